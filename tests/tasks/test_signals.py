"""Joins and bans are signalled (tasks.signals); training's receivers register / unregister SuperNodes, with the
jobs sent after the commit."""

from __future__ import annotations

import pytest

from tasks import signals
from tasks.models import Participation
from tasks.services import ban_create, identity_for_wallet, participation_join
from tests.tasks.factories import UserFactory, signed_join, wallet
from training.models import NodeRegistration

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_jobs(monkeypatch):
    """training.jobs sent by name (`training.services.common.enqueue`) and the ledger's sends, instead of
    the broker."""
    from celery import current_app

    sent = []
    monkeypatch.setattr(
        current_app,
        "send_task",
        lambda name, args=(), countdown=None, **kw: sent.append((name.rsplit(".", 1)[-1], *args)),
    )
    monkeypatch.setattr(
        "contracts.jobs.chain_tx_send.delay", lambda tx_id: sent.append(("chain_tx_send", tx_id))
    )
    return sent


def join(task, account):
    return participation_join(
        task=task, user=UserFactory(username=account.address), **signed_join(task, account)
    )


def test_join_registers_the_node_in_its_transaction_and_the_job_after_commit(
    task_factory, fake_deployment, sent_jobs, django_capture_on_commit_callbacks
):
    # given
    task = task_factory()
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        participation = join(task, wallet(1))
        # then: the node row is written with the join; nothing is sent before the commit
        reg = NodeRegistration.objects.get(public_key_hash=participation.node_public_key_hash)
        assert reg.wallet == participation.wallet and reg.status == NodeRegistration.Status.PENDING
        assert sent_jobs == []
    for callback in callbacks:
        callback()
    assert sent_jobs == [("node_register", reg.pk)]


def test_ban_unregisters_the_persons_nodes_after_commit(sent_jobs, django_capture_on_commit_callbacks):
    # given
    identity = identity_for_wallet(address=wallet(1).address)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        ban = ban_create(identity=identity, task=None, reason="poisoning", evidence={}, expires_at=None)
    # then: the chain job and training's unregister job, both after commit
    assert ("chain_tx_send", ban.ban_tx_id) in sent_jobs
    assert ("node_unregister_identity", identity.pk) in sent_jobs


def test_signals_carry_the_documented_kwargs(task_factory, fake_deployment, sent_jobs):
    # given
    got = []

    def receiver(sender, **kwargs):
        got.append((sender, kwargs))

    signals.participation_joined.connect(receiver)
    signals.identity_banned.connect(receiver)
    try:
        # when
        participation = join(task_factory(), wallet(1))
        ban = ban_create(identity=participation.identity, task=None, reason="r", evidence={}, expires_at=None)
    finally:
        signals.participation_joined.disconnect(receiver)
        signals.identity_banned.disconnect(receiver)
    # then
    assert got[0] == (Participation, {"signal": signals.participation_joined, "participation": participation})
    assert got[1][0].__name__ == "Ban"
    assert got[1][1]["ban"] == ban and got[1][1]["identity"] == participation.identity


def test_a_failing_receiver_rolls_the_join_back(task_factory, fake_deployment, sent_jobs):
    # given: a receiver that cannot do its part
    def broken(sender, **kwargs):
        raise RuntimeError("receiver down")

    signals.participation_joined.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            join(task_factory(), wallet(1))
    finally:
        signals.participation_joined.disconnect(broken)
    # then: no half-done join
    assert not Participation.objects.exists() and not NodeRegistration.objects.exists()
