"""Joining: happy path and every refusal reason, through the service and the API."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from bcfl_core import eip712
from contracts.models import ChainTx
from tasks.models import Participation, Task, TrustedIssuer
from tasks.services import (
    JoinRefused,
    ban_create,
    identity_for_wallet,
    identity_link_credential,
    participation_join,
)
from tests.tasks.factories import UserFactory, signed_join, summary, wallet

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _deployment(fake_deployment):
    return fake_deployment


def join(task, account, **kwargs):
    user = UserFactory(username=account.address)
    return participation_join(task=task, user=user, **signed_join(task, account, **kwargs))


def refused(code, task, account, **kwargs):
    with pytest.raises(JoinRefused) as info:
        join(task, account, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def test_happy_path(task_factory):
    # given
    task = task_factory()
    acct = wallet(1)
    # when
    p = join(task, acct)
    # then
    assert p.status == Participation.Status.JOINED
    assert p.wallet == acct.address
    assert p.identity.did == f"did:pkh:eip155:31337:{acct.address}"
    assert p.data_summary_hash == eip712.data_summary_hash(summary())


def test_not_recruiting(task_factory):
    refused("not_recruiting", task_factory(status=Task.Status.TRAINING), wallet(1))


def test_full(task_factory):
    task = task_factory(max_participants=1)
    join(task, wallet(1))
    refused("full", task, wallet(2))


def test_spec_mismatch(task_factory):
    task = task_factory()
    err = refused("spec_mismatch", task, wallet(1), data_summary=summary(shape=(5,)))
    assert "shape" in err.message
    refused("spec_mismatch", task, wallet(2), data_summary=summary(n=3))
    refused("spec_mismatch", task, wallet(3), data_summary=summary(labels=(0, 9)))
    refused("spec_mismatch", task, wallet(4), data_summary={"n": 3})


def test_already_joined(task_factory):
    task = task_factory()
    join(task, wallet(1))
    refused("already_joined", task, wallet(1))


def test_bad_signature(task_factory):
    # given: signed by another key
    task = task_factory()
    acct, other = wallet(1), wallet(2)
    payload = signed_join(task, other)
    payload["participant"] = acct.address
    with pytest.raises(JoinRefused) as info:
        participation_join(task=task, user=UserFactory(username=acct.address), **payload)
    assert info.value.code == "bad_signature"


def test_signature_over_different_summary_is_refused(task_factory):
    task = task_factory()
    acct = wallet(1)
    payload = signed_join(task, acct)
    payload["data_summary"] = summary(n=90)
    with pytest.raises(JoinRefused) as info:
        participation_join(task=task, user=UserFactory(username=acct.address), **payload)
    assert info.value.code == "bad_signature"


def test_wrong_chain_domain_is_refused(task_factory):
    task = task_factory()
    acct = wallet(1)
    payload = signed_join(task, acct, chain_id=1)
    with pytest.raises(JoinRefused) as info:
        participation_join(task=task, user=UserFactory(username=acct.address), **payload)
    assert info.value.code == "bad_signature"


def test_wrong_wallet(task_factory):
    task = task_factory()
    payload = signed_join(task, wallet(1))
    with pytest.raises(JoinRefused) as info:
        participation_join(task=task, user=UserFactory(username=wallet(2).address), **payload)
    assert info.value.code == "wrong_wallet"


def test_banned_identity_is_refused_with_reason_and_expiry(task_factory):
    # given
    acct = wallet(1)
    until = timezone.now() + timedelta(days=3)
    ban_create(
        identity=identity_for_wallet(address=acct.address),
        task=None,
        reason="label flipping in task 3",
        evidence={"round": 2},
        expires_at=until,
    )
    # when / then
    err = refused("banned", task_factory(), acct)
    assert "label flipping" in err.message and until.strftime("%Y-%m-%d") in err.message


def test_expired_ban_does_not_block(task_factory):
    acct = wallet(1)
    ban = ban_create(
        identity=identity_for_wallet(address=acct.address),
        task=None,
        reason="x",
        evidence={},
        expires_at=timezone.now() + timedelta(seconds=30),
    )
    ban.__class__.objects.filter(pk=ban.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert join(task_factory(), acct).pk


def _issue(acct, nullifier, issuer_acct, expires=None):
    expires = expires or int((timezone.now() + timedelta(days=30)).timestamp())
    cred = {"subject": acct.address, "nullifier": nullifier, "expiresAt": expires}
    msg = eip712.credential_typed_data(
        chain_id=31337, subject=acct.address, nullifier=nullifier, expires_at=expires
    )
    return cred, eip712.sign_typed_data(msg, issuer_acct.key.hex())


@pytest.fixture
def issuer():
    acct = wallet(99)
    TrustedIssuer.objects.create(address=acct.address, name="Test issuer")
    return acct


def test_other_wallet_of_a_banned_person_cannot_join(task_factory, issuer):
    # given: two wallets of one person (same nullifier); the person is banned via wallet 1
    a, b = wallet(1), wallet(2)
    nullifier = "0x" + "ab" * 32
    for acct in (a, b):
        identity_link_credential(
            wallet=acct.address,
            **dict(zip(("credential", "signature"), _issue(acct, nullifier, issuer), strict=True)),
        )
    ban_create(
        identity=identity_for_wallet(address=a.address),
        task=None,
        reason="poisoning",
        evidence={},
        expires_at=None,
    )
    # then
    refused("banned", task_factory(), b)


def test_ban_on_old_pkh_identity_follows_the_merge(task_factory, issuer):
    # given: wallet 1 banned as did:pkh, then both wallets get the same credential
    a, b = wallet(1), wallet(2)
    ban_create(
        identity=identity_for_wallet(address=a.address),
        task=None,
        reason="poisoning",
        evidence={},
        expires_at=None,
    )
    nullifier = "0x" + "cd" * 32
    for acct in (a, b):
        cred, sig = _issue(acct, nullifier, issuer)
        identity_link_credential(wallet=acct.address, credential=cred, signature=sig)
    # then
    refused("banned", task_factory(), b)


def test_second_wallet_of_same_person_is_already_joined(task_factory, issuer):
    a, b = wallet(1), wallet(2)
    nullifier = "0x" + "ef" * 32
    for acct in (a, b):
        cred, sig = _issue(acct, nullifier, issuer)
        identity_link_credential(wallet=acct.address, credential=cred, signature=sig)
    task = task_factory()
    join(task, a)
    refused("already_joined", task, b)


def test_credential_required(task_factory, issuer):
    task = task_factory(requires_credential=True)
    refused("credential_required", task, wallet(1))
    acct = wallet(2)
    cred, sig = _issue(acct, "0x" + "12" * 32, issuer)
    identity_link_credential(wallet=acct.address, credential=cred, signature=sig)
    assert join(task, acct).identity.kind == "nullifier"


def test_ban_goes_through_the_ledger(task_factory):
    task = task_factory()
    acct = wallet(1)
    ban = ban_create(
        identity=identity_for_wallet(address=acct.address),
        task=task,
        reason="r",
        evidence={"a": 1},
        expires_at=None,
    )
    tx = ChainTx.objects.get(idempotency_key=f"ban:{ban.pk}")
    assert tx.contract_name == "IdentityRegistry" and tx.function == "ban"
    assert tx.args[0] == identity_for_wallet(address=acct.address).chain_hash
    assert int(tx.args[1]) == task.chain_task_id and tx.args[2] == ban.evidence_hash
    assert tx.task_ref == str(task.pk)


# --- API ----------------------------------------------------------------------------------------


def api_for(account):
    client = APIClient()
    client.force_authenticate(UserFactory(username=account.address))
    return client


def test_api_join_happy_path_and_mine(task_factory):
    task = task_factory()
    acct = wallet(1)
    client = api_for(acct)
    resp = client.post(f"/api/v1/tasks/{task.pk}/join/", signed_join(task, acct), format="json")
    assert resp.status_code == 201, resp.json()
    assert client.get("/api/v1/participations/mine/").json()["results"][0]["task"] == task.pk
    me = client.get("/api/v1/identity/mine/").json()
    assert me["wallets"] == [acct.address] and me["banned"] is False


def test_api_join_refusal_has_reason(task_factory):
    task = task_factory(status=Task.Status.CANCELLED)
    acct = wallet(1)
    resp = api_for(acct).post(f"/api/v1/tasks/{task.pk}/join/", signed_join(task, acct), format="json")
    assert resp.status_code == 409
    assert resp.json()["reason"] == "not_recruiting"


def test_api_banned_sees_why(task_factory):
    acct = wallet(1)
    ban_create(
        identity=identity_for_wallet(address=acct.address),
        task=None,
        reason="free riding",
        evidence={},
        expires_at=None,
    )
    task = task_factory()
    client = api_for(acct)
    resp = client.post(f"/api/v1/tasks/{task.pk}/join/", signed_join(task, acct), format="json")
    assert resp.status_code == 403
    assert resp.json()["reason"] == "banned" and resp.json()["ban"]["reason"] == "free riding"
    assert client.get("/api/v1/identity/mine/").json()["banned"] is True


def test_api_join_needs_authentication(task_factory):
    task = task_factory()
    resp = APIClient().post(f"/api/v1/tasks/{task.pk}/join/", signed_join(task, wallet(1)), format="json")
    assert resp.status_code in (401, 403)


def test_api_task_detail_has_join_domain(task_factory):
    task = task_factory()
    body = APIClient().get(f"/api/v1/tasks/{task.pk}/").json()
    assert body["join_domain"]["verifyingContract"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert body["chain_task_id"] == task.chain_task_id
