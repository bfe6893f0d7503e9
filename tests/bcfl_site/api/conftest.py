"""Fixtures for API tests: a signed-in wallet user with a DRF token, tasks, a fake deployment."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.tasks.factories import TaskFactory, UserFactory, wallet


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def api_user(db):
    """A wallet user (username = checksummed address) and its API token."""
    user = UserFactory(username=wallet(500).address)
    return user, Token.objects.create(user=user).key


@pytest.fixture
def recruiting_task(db, fake_deployment):
    return TaskFactory()
