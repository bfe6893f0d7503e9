"""Helpers for tests that run real Celery worker subprocesses against the pytest test database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.conf import settings as dj_settings


def test_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created, for worker subprocesses."""
    db = dj_settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def worker_env(*, broker_url: str, chain_url: str, **extra: str) -> dict[str, str]:
    """Environment of a platform subprocess (Celery worker, manage.py) on the pytest test DB, a Redis db of its
    own (`broker_url`) and the test's anvil node, with the platform's dev signer; `extra` adds variables."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bcfl_site.settings.test",
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "REDIS_URL": broker_url,
        "CHAIN_RPC_URL": chain_url,
        "CHAIN_ID": "31337",
        "CHAIN_SIGNER_KEY": "",
        "CHAIN_KEYSTORE_FILE": "",
        # names its PostgreSQL connections, so a connection left open is traced to a subprocess (tests/conftest.py)
        "PGAPPNAME": "bcfl-test-subprocess",
        **extra,
    }


@contextmanager
def celery_producer_on(broker_url: str) -> Iterator:
    """Point this process's Celery producer at `broker_url` (a Redis db of its own), flushed before and after.

    Skips when Redis is not running, except in CI, where .ci/run starts it and its absence is a failure.
    """
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(broker_url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client.flushdb()
    from bcfl_site.celery import app

    keys = ("broker_url", "broker_read_url", "broker_write_url", "result_backend")
    saved = {k: app.conf[k] for k in keys}
    app.conf.update(dict.fromkeys(keys, broker_url))
    app._pool = None  # the producer pool must reconnect to the new URL
    app.amqp._producer_pool = None
    assert app.connection_for_write().as_uri() == broker_url
    try:
        yield client
    finally:
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None
        client.flushdb()
