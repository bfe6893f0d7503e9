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
