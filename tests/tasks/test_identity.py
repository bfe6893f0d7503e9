from datetime import timedelta

import pytest
from django.utils import timezone

from bcfl_core import eip712
from tasks.models import Ban, Identity, TrustedIssuer
from tasks.services import (
    CredentialError,
    ban_create,
    ban_lift,
    identity_for_wallet,
    identity_link_credential,
)
from tests.tasks.factories import UserFactory, wallet

pytestmark = pytest.mark.django_db


def credential(acct, issuer, nullifier="0x" + "aa" * 32, expires=None):
    expires = expires or int((timezone.now() + timedelta(days=1)).timestamp())
    msg = eip712.credential_typed_data(
        chain_id=31337, subject=acct.address, nullifier=nullifier, expires_at=expires
    )
    return {"subject": acct.address, "nullifier": nullifier, "expiresAt": expires}, eip712.sign_typed_data(
        msg, issuer.key.hex()
    )


def test_identity_for_wallet_is_did_pkh_and_stable():
    acct = wallet(1)
    first = identity_for_wallet(address=acct.address.lower())
    assert first.did == f"did:pkh:eip155:31337:{acct.address}"
    assert identity_for_wallet(address=acct.address).pk == first.pk
    assert first.chain_hash == eip712.keccak_hex(first.did)


def test_credential_merges_wallets():
    issuer = wallet(50)
    TrustedIssuer.objects.create(address=issuer.address, name="I")
    a, b = wallet(1), wallet(2)
    old = identity_for_wallet(address=a.address)
    for acct in (a, b):
        cred, sig = credential(acct, issuer)
        identity_link_credential(wallet=acct.address, credential=cred, signature=sig)
    person = identity_for_wallet(address=a.address)
    assert person.kind == Identity.Kind.NULLIFIER
    assert identity_for_wallet(address=b.address).pk == person.pk
    assert sorted(person.wallets.values_list("address", flat=True)) == sorted([a.address, b.address])
    old.refresh_from_db()
    assert old.merged_into_id == person.pk


@pytest.mark.parametrize("problem", ["untrusted", "inactive", "expired", "other_subject", "bad_sig"])
def test_credential_refusals(problem):
    issuer = wallet(50)
    TrustedIssuer.objects.create(address=issuer.address, name="I", active=problem != "inactive")
    acct = wallet(1)
    signer = wallet(51) if problem == "untrusted" else issuer
    expires = int((timezone.now() - timedelta(days=1)).timestamp()) if problem == "expired" else None
    cred, sig = credential(acct, signer, expires=expires)
    wallet_used = wallet(2).address if problem == "other_subject" else acct.address
    if problem == "bad_sig":
        sig = "0x" + "00" * 65
    with pytest.raises(CredentialError):
        identity_link_credential(wallet=wallet_used, credential=cred, signature=sig)


def test_ban_lift_admin_only_and_on_chain():
    # given
    ban = ban_create(
        identity=identity_for_wallet(address=wallet(1).address),
        task=None,
        reason="r",
        evidence={},
        expires_at=None,
    )
    # then: a non-admin cannot lift
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        ban_lift(ban=ban, reason="appeal", by=UserFactory())
    admin = UserFactory(is_staff=True)
    lifted = ban_lift(ban=ban, reason="appeal accepted", by=admin)
    assert lifted.lifted_at and lifted.lift_tx.function == "lift"
    assert not Ban.objects.active().filter(pk=ban.pk).exists()
    assert ban_lift(ban=ban, reason="again", by=admin).lift_reason == "appeal accepted"  # no-op


def test_ban_expiry_must_be_future():
    with pytest.raises(ValueError, match="future"):
        ban_create(
            identity=identity_for_wallet(address=wallet(1).address),
            task=None,
            reason="r",
            evidence={},
            expires_at=timezone.now() - timedelta(days=1),
        )
