import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _dataset_cache(tmp_path_factory):
    """Keep prepared dataset splits out of the repository's var/ during tests."""
    old = os.environ.get("BCFL_DATASET_CACHE")
    os.environ["BCFL_DATASET_CACHE"] = str(tmp_path_factory.mktemp("datasets"))
    yield
    if old is None:
        os.environ.pop("BCFL_DATASET_CACHE", None)
    else:
        os.environ["BCFL_DATASET_CACHE"] = old
