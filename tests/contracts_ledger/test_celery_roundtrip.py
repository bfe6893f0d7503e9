"""A real `celery worker -Q chain` subprocess (Redis db 15) sends a ledger transaction end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as dj_settings

from contracts.chain import ETH_TRANSFER
from contracts.models import ChainTx
from contracts.services import chain_tx_enqueue

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/15"


def _database_url() -> str:
    db = dj_settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def redis_broker():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client.flushdb()
    from bcfl_site.celery import app

    keys = ("broker_url", "broker_read_url", "broker_write_url", "result_backend")
    saved = {k: app.conf[k] for k in keys}
    app.conf.update(dict.fromkeys(keys, BROKER))
    app._pool = None  # the producer pool must connect to db 15
    app.amqp._producer_pool = None
    assert app.connection_for_write().as_uri() == BROKER
    yield client
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None
    client.flushdb()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_celery_worker_confirms_an_enqueued_transaction(chain_settings, anvil, redis_broker, tmp_path):
    # given: a chain worker process on the same DB and node
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bcfl_site.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": BROKER,
        "CELERY_RESULT_BACKEND": BROKER,
        "REDIS_URL": BROKER,
        "CHAIN_RPC_URL": anvil.url,
        "CHAIN_ID": "31337",
        "CHAIN_SIGNER_KEY": "",
        "CHAIN_KEYSTORE_FILE": "",
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bcfl_site", "worker", "-Q", "chain", "--concurrency", "1",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        # when
        tx = chain_tx_enqueue(key="celery-1", contract_name="", function=ETH_TRANSFER,
                              args=["0x" + "55" * 20], value_wei=12345)  # fmt: skip
        # then
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tx.refresh_from_db()
            if tx.status in (ChainTx.Status.CONFIRMED, ChainTx.Status.FAILED) or worker.poll() is not None:
                break
            time.sleep(0.2)
        assert tx.status == ChainTx.Status.CONFIRMED, (tmp_path / "worker.log").read_text()[-3000:]
        assert tx.gas_used == 21000 and tx.tx_hash
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        log.close()
