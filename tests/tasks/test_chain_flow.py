"""Against a real anvil: the creator's wallet sends createTask / cancel, the server confirms from receipts."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from eth_account import Account

from contracts import chain
from contracts.devwallet import dev_send
from tasks.models import Task
from tasks.services import task_create, task_create_call, task_sync_chain_events
from tests.anvil import DEV_KEYS
from tests.tasks.factories import UserFactory, npz_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.anvil]


@pytest.fixture
def on_anvil(anvil, settings):
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_ID = 31337
    call_command("deploy_contracts", "--redeploy-missing")
    return anvil


def new_task(key: str) -> Task:
    user = UserFactory(username=Account.from_key(key).address)
    return task_create(
        creator=user,
        title="Digits on anvil",
        model_kind="mlp",
        learning_rate=0.05,
        local_epochs=1,
        batch_size=16,
        feature_shape=[4],
        label_set=[0, 1, 2],
        min_samples_per_participant=10,
        rounds=2,
        min_participants=1,
        max_participants=3,
        aggregation_rule="fedavg",
        reward_wei=10**17,
        creator_share_bps=500,
        validation_file=ContentFile(npz_bytes(), name="val.npz"),
        licence_terms="CC-BY-4.0",
    )


def test_create_confirm_and_forged_confirm(on_anvil, client):
    # given: two creators, each sends its own createTask
    alice_key, bob_key = DEV_KEYS[3], DEV_KEYS[4]
    alice_task, bob_task = new_task(alice_key), new_task(bob_key)
    alice_hash = dev_send(task_create_call(task=alice_task), alice_key)
    bob_hash = dev_send(task_create_call(task=bob_task), bob_key)

    # when: alice posts bob's tx hash to her confirm endpoint
    client.force_login(alice_task.creator)
    url = reverse("tasks:register-confirm", args=[alice_task.pk])
    forged = client.post(url, {"tx_hash": bob_hash})
    # then: refused with a clear message, nothing changes
    assert forged.status_code == 400
    assert "not by the task creator's wallet" in forged.json()["message"]
    alice_task.refresh_from_db()
    assert alice_task.status == Task.Status.REGISTERING and alice_task.chain_task_id is None

    # when: alice posts her own
    ok = client.post(url, {"tx_hash": alice_hash})
    # then
    assert ok.status_code == 200, ok.json()
    alice_task.refresh_from_db()
    assert alice_task.status == Task.Status.RECRUITING
    assert alice_task.chain_task_id == ok.json()["chain_task_id"]
    assert alice_task.create_tx_hash == alice_hash.lower() and alice_task.create_fee_wei > 0
    onchain = chain.call("TaskRegistry", "getTask", [alice_task.chain_task_id])
    assert onchain[0] == alice_task.creator.username and onchain[1] == 10**17

    # and: bob posting his hash to alice's task is forbidden outright (not the creator)
    client.force_login(bob_task.creator)
    assert client.post(url, {"tx_hash": bob_hash}).status_code == 403


def test_tx_for_another_task_of_the_same_creator_is_refused(on_anvil, client):
    key = DEV_KEYS[5]
    first, second = new_task(key), new_task(key)
    first_hash = dev_send(task_create_call(task=first), key)
    client.force_login(first.creator)
    resp = client.post(reverse("tasks:register-confirm", args=[second.pk]), {"tx_hash": first_hash})
    assert resp.status_code == 400 and "spec hash" in resp.json()["message"]


def test_job_confirms_from_indexed_events_and_cancel_flow(on_anvil, client):
    # given: the browser closed after sending createTask
    key = DEV_KEYS[6]
    task = new_task(key)
    dev_send(task_create_call(task=task), key)
    from contracts.indexer import chain_index_events

    chain_index_events()
    # when
    counts = task_sync_chain_events()
    # then
    task.refresh_from_db()
    assert counts["registered"] == 1 and task.status == Task.Status.RECRUITING

    # when: the creator cancels with their wallet
    client.force_login(task.creator)
    page = client.get(reverse("tasks:cancel", args=[task.pk]))
    call = page.context["call"]
    cancel_hash = dev_send(call, key)
    resp = client.post(reverse("tasks:cancel-confirm", args=[task.pk]), {"tx_hash": cancel_hash})
    # then
    assert resp.status_code == 200, resp.json()
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED and task.cancel_tx_hash == cancel_hash.lower()


def test_ban_is_sent_on_chain(on_anvil):
    from contracts.services import chain_tx_process
    from tasks.services import ban_create, identity_for_wallet

    identity = identity_for_wallet(address=Account.from_key(DEV_KEYS[7]).address)
    ban = ban_create(identity=identity, task=None, reason="poisoning", evidence={"round": 1}, expires_at=None)
    tx = chain_tx_process(tx_id=ban.ban_tx_id)
    assert tx.status == "confirmed", tx.error
    assert chain.call("IdentityRegistry", "isBanned", [identity.chain_hash]) is True
