"""Reads of the task domain, on rows made by the factories."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks import selectors
from tasks.models import Participation
from tests.tasks.factories import (
    BanFactory,
    IdentityFactory,
    IdentityWalletFactory,
    ParticipationFactory,
    wallet,
)

pytestmark = pytest.mark.django_db


def test_participant_count_counts_only_places_held(task_factory):
    # given: two joined, one excluded, one withdrawn
    task = task_factory(max_participants=5)
    ParticipationFactory.create_batch(2, task=task)
    ParticipationFactory(task=task, status=Participation.Status.EXCLUDED)
    ParticipationFactory(task=task, status=Participation.Status.WITHDRAWN)
    # then
    assert selectors.task_get(pk=task.pk).participant_count == 2
    assert selectors.task_counted_participations(task=task) == 2


def test_identity_of_wallet_is_the_persons_root():
    # given: a wallet's pkh identity merged into a credential identity
    person = IdentityFactory(did="did:bcfl:nullifier:0x01", link=None)
    address = wallet(7).address
    IdentityFactory(address=address, merged_into=person)
    # then
    assert selectors.identity_of_wallet(address=address) == person
    assert selectors.identity_of_wallet(address="not an address") is None
    assert selectors.identity_of_wallet(address=wallet(8).address) is None


def test_active_ban_of_any_merged_identity_prefers_the_permanent_one():
    # given: a person with two identities, banned on both (one expiring, one permanent, one lifted)
    person = IdentityFactory()
    merged = IdentityFactory(merged_into=person)
    BanFactory(identity=merged, expires_at=timezone.now() + timedelta(days=3), reason="expiring")
    permanent = BanFactory(identity=person, reason="permanent")
    BanFactory(identity=person, reason="lifted", lifted_at=timezone.now())
    # then
    assert selectors.identity_active_ban(identity=merged) == permanent
    assert sorted(selectors.identity_group_ids(identity=merged)) == sorted([person.pk, merged.pk])
    assert selectors.identity_bans(identity=person).count() == 3


def test_participation_of_person_finds_another_wallet_of_the_same_person(task_factory):
    # given
    task = task_factory()
    joined = ParticipationFactory(task=task)
    other_wallet = IdentityWalletFactory(identity=joined.identity).address
    # then
    found = selectors.task_participation_of_person(
        task=task, wallet=other_wallet, identity_ids=selectors.identity_group_ids(identity=joined.identity)
    )
    assert found == joined
