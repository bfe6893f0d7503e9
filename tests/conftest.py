import pytest
from hypothesis import settings

from tests.anvil import DEV_KEYS, Anvil

# Tests that use these fixtures start a real anvil node: they get the `anvil` marker automatically, so
# `pytest -m "not slow and not anvil"` runs without any chain.
ANVIL_FIXTURES = frozenset({"anvil", "fresh_anvil"})

# Timed assertions do not belong in tests (machines are noisy): no per-example deadline for hypothesis.
settings.register_profile("bcfl", deadline=None)
settings.load_profile("bcfl")


@pytest.hookimpl(tryfirst=True)  # before pytest's own `-m` deselection sees the items
def pytest_collection_modifyitems(config, items):
    for item in items:
        if ANVIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.anvil)


@pytest.fixture(autouse=True)
def _anvil_only_when_marked(request, monkeypatch):
    """A test that starts anvil by hand must say so (`@pytest.mark.anvil`); end-to-end (`slow`) tests may."""
    if request.node.get_closest_marker("anvil") or request.node.get_closest_marker("slow"):
        return

    def refuse(self, *args, **kwargs):
        raise RuntimeError(
            f"{request.node.nodeid} starts anvil: mark it @pytest.mark.anvil (or use fake_chain)"
        )

    monkeypatch.setattr(Anvil, "start", refuse)


@pytest.fixture(scope="session")
def anvil():
    """A real anvil node on a free port for the whole test session (chain id 31337)."""
    node = Anvil().start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def dev_keys():
    return list(DEV_KEYS)


@pytest.fixture
def fake_chain(db, settings, monkeypatch):
    """An in-memory chain behind `contracts.chain` (contracts/fake_chain.py), with the five contracts recorded.

    For tests that are not about the chain: deterministic, no node, fails on demand
    (`fake_chain.fail_next("broadcast")`, `.revert_next("TaskRegistryZeroReward")`, `.down = True`,
    `.automine = False`).
    """
    from contracts.fake_chain import FakeChain

    fake = FakeChain().install(monkeypatch, settings)
    fake.deploy()
    return fake


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


# --- database connections left open --------------------------------------------------------------------------
# A connection to the test database still open when the session ends stops pytest-django from dropping it:
# PostgreSQL then keeps `test_<name>` after the run, and the teardown error names whichever test ran last. Such
# connections come from threads, subprocesses (Celery workers, manage.py commands) and event-loop contexts (a
# test body run while playwright's loop runs, see tests/e2e/browser.py). Each database test must leave no
# connection but this process's current one; a leak fails the test that made it, naming who opened it.

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


_CONNECTION_ORIGINS: dict[int, str] = {}  # backend pid -> thread and code that opened it (this process)


def _record_connection_origin(sender, connection, **kwargs) -> None:
    """Remember who opened each PostgreSQL connection of this process, to name the culprit of a leak."""
    import threading
    import traceback

    if connection.vendor != "postgresql":
        return
    ours = [f for f in traceback.extract_stack()[:-1] if "/site-packages/" not in f.filename]
    where = " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in reversed(ours[-4:]))
    _CONNECTION_ORIGINS[connection.connection.info.backend_pid] = (
        f"{threading.current_thread().name}: {where}"
    )


def _described(stray: list[dict]) -> list[dict]:
    return [{**o, "opened_by": _CONNECTION_ORIGINS.get(o["pid"], "another process")} for o in stray]


def pytest_configure(config):
    from django.db.backends.signals import connection_created

    connection_created.connect(_record_connection_origin, dispatch_uid="tests.record_connection_origin")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with a last sweep before it is dropped: a connection still open then
    (from a test without a database fixture, which `_no_stray_db_connections` does not check) is reported and
    terminated, so the DROP DATABASE succeeds instead of leaving `test_<name>` behind."""
    yield
    with django_db_blocker.unblock():
        stray = stray_db_connections()
    if stray:
        import warnings

        warnings.warn(
            f"connections to the test database left open at the end of the session: {_described(stray)}",
            stacklevel=1,
        )


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
            f"process): {_described(stray)}",
            pytrace=False,
        )


@pytest.fixture
def fake_deployment(db, settings):
    """Deployment rows at fixed addresses so EIP-712 domains resolve without a chain."""
    from tests.tasks.factories import fake_deployments

    return fake_deployments(chain_id=settings.CHAIN_ID)
