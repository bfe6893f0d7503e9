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
