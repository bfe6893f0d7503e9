"""Fixtures for API tests: a signed-in wallet user with a DRF token, tasks, a fake deployment."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.tasks.conftest import (  # noqa: F401 - fixtures
    TaskFactory,
    UserFactory,
    _private_media,
    fake_deployment,
    wallet,
)


@pytest.fixture
def api_user(db):
    """A wallet user (username = checksummed address) and its API token."""
    user = UserFactory(username=wallet(500).address)
    return user, Token.objects.create(user=user).key


@pytest.fixture
def recruiting_task(db, fake_deployment):  # noqa: F811 - the fixture imported above
    return TaskFactory()
