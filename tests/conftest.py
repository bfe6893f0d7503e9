import pytest

from tests.anvil import DEV_KEYS, Anvil


@pytest.fixture(scope="session")
def anvil():
    """A real anvil node on a free port for the whole test session (chain id 31337)."""
    node = Anvil().start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def dev_keys():
    return list(DEV_KEYS)


@pytest.fixture(scope="session", autouse=True)
def _discard_enqueued_jobs():
    """Jobs the tests enqueue go to the test broker (bcfl_site.settings.test: Redis db 12, read by no
    worker); empty it when the session ends so they do not pile up. Nothing to do without Redis."""
    yield
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        return
    import contextlib

    import redis

    with contextlib.suppress(redis.exceptions.RedisError, OSError):  # best effort
        redis.Redis.from_url(url, socket_connect_timeout=0.5).flushdb()


# --- database connections opened outside the test's own thread --------------------------------------------
# A thread or subprocess (Celery worker, manage.py command, live_server request) that still holds a connection
# to the test database when the session ends stops pytest-django from dropping it: PostgreSQL then keeps
# `test_<name>` after the run. Each test that used the database must leave no connection but this process's
# own behind; a leak fails the test that made it (not whichever test happened to run last).

STRAY_CONNECTION_GRACE_S = 10.0  # a killed client's backend exits a moment after the kernel closes its socket


def _other_backends(connection) -> list[dict]:
    """Backends connected to this connection's database other than its own (PostgreSQL only)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first snapshot only
        cursor.execute(
            "SELECT pid, application_name, client_port, state, backend_start, left(query, 200) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        cols = ["pid", "application_name", "client_port", "state", "backend_start", "query"]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]


def stray_db_connections(grace_s: float = STRAY_CONNECTION_GRACE_S) -> list[dict]:
    """Connections to the test database still open after `grace_s` seconds, which are then terminated.

    Returns [] on SQLite (a file: nothing to drop) or when none remain. Raises nothing on a closed database.
    """
    import time

    from django.db import connections

    conn = connections["default"]
    if conn.vendor != "postgresql":
        return []
    deadline = time.monotonic() + grace_s
    others = _other_backends(conn)
    while others and time.monotonic() < deadline:
        time.sleep(0.2)
        others = _other_backends(conn)
    if others:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [[o["pid"] for o in others]]
            )
    return others


@pytest.fixture(autouse=True)
def _no_stray_db_connections(request):
    """Fail a database test that leaves a connection to the test database open (see `stray_db_connections`)."""
    yield
    if "django_db_setup" not in request.fixturenames:
        return  # no database in this test: nothing it could have left open
    django_db_blocker = request.getfixturevalue("django_db_blocker")
    with django_db_blocker.unblock():
        stray = stray_db_connections()
    if stray:
        pytest.fail(
            f"{len(stray)} connection(s) to the test database were still open after the test (terminated now); "
            "close them in the thread or subprocess that opened them (connections.close_all(), stop the "
            f"process): {stray}",
            pytrace=False,
        )
