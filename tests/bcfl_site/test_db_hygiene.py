"""The test suite's own hygiene: a connection to the test database left open is found, named and closed."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from tests.conftest import stray_db_connections

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite test databases are files: nothing to drop"
)
def test_a_connection_left_open_in_a_thread_is_found_and_terminated():
    # given: a thread that opened its own connection to the test database and keeps it
    opened, done = threading.Event(), threading.Event()

    def hold():
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        opened.set()
        done.wait(30)
        try:
            connections.close_all()
        except Exception:  # noqa: BLE001, S110 - its backend was terminated: the socket is gone already
            pass

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert opened.wait(30)
        # when
        stray = stray_db_connections(grace_s=0.5)
        # then: the thread's backend is reported and terminated; none remain
        assert len(stray) == 1 and stray[0]["pid"]
        assert stray_db_connections(grace_s=5) == []
    finally:
        done.set()
        thread.join(30)


def test_a_thread_that_closes_its_connection_leaves_nothing():
    def work():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert stray_db_connections(grace_s=5) == []


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite test databases are files: nothing to drop"
)
def test_connections_opened_while_an_event_loop_runs_in_the_thread_are_closed_by_the_browser_fixture(
    monkeypatch,
):
    """What playwright's sync API does to a browser test: its event loop counts as running in the test's thread,
    so Django stores the test's connection per context, out of reach once the loop stops."""
    import asyncio

    from django.contrib.auth import get_user_model

    from tests.e2e.browser import _close_db_connections_of_this_context

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    loop = asyncio.new_event_loop()
    asyncio._set_running_loop(loop)
    try:
        # given: the test body queries the database while the loop "runs"
        get_user_model().objects.count()
        assert connections["default"].connection is not None
        # when: the browser fixture tears down (before the loop stops)
        _close_db_connections_of_this_context()
    finally:
        asyncio._set_running_loop(None)
        loop.close()
    # then: nothing is left open
    assert stray_db_connections(grace_s=5) == []
