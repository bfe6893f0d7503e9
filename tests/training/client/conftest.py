"""Fixtures for the participant client: a recruiting task on a live server, wallets, data files."""

from __future__ import annotations

import pytest

from tests.tasks.factories import REGISTRY, TaskFactory, npz_bytes


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def deployment(transactional_db, settings):
    from contracts.models import Deployment

    Deployment.objects.create(chain_id=settings.CHAIN_ID, name="TaskRegistry", address=REGISTRY)
    return REGISTRY


@pytest.fixture
def recruiting_task(deployment):
    return TaskFactory(min_participants=1, max_participants=2)


@pytest.fixture
def good_data(tmp_path):
    path = tmp_path / "good.npz"
    path.write_bytes(npz_bytes(n=30, shape=(4,), labels=(0, 1, 2)))
    return path


@pytest.fixture
def bad_data(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(npz_bytes(n=5, shape=(5,), labels=(0, 7)))
    return path
