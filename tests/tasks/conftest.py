"""Fixtures for the task domain (the factories and test data are in tests/tasks/factories.py)."""

from __future__ import annotations

import pytest

from tests.tasks.factories import ParticipationFactory, TaskFactory, UserFactory


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def user_factory(db):
    return UserFactory


@pytest.fixture
def task_factory(db):
    return TaskFactory


@pytest.fixture
def participation_factory(db):
    return ParticipationFactory
