"""Identities: the person behind a wallet (`did:pkh` of the wallet) and uniqueness credentials that merge a
person's wallets into one identity (a trusted issuer's EIP-712 `UniquenessCredential` with a nullifier), so a
ban of one wallet holds for all of them. Reads (root identity, a person's bans) are in `tasks.selectors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_utils import is_address, to_checksum_address

from bcfl_core import eip712
from tasks.lock_objects import identities_lock
from tasks.models import Identity, IdentityWallet, TrustedIssuer
from tasks.selectors import identity_root
from tasks.services.errors import CredentialError


def pkh_did(*, address: str, chain_id: int | None = None) -> str:
    """`did:pkh:eip155:<chain id>:<checksummed address>` (chain id defaults to the platform's)."""
    return f"did:pkh:eip155:{chain_id or settings.CHAIN_ID}:{to_checksum_address(address)}"


def identity_for_wallet(*, address: str) -> Identity:
    """The person behind `address`: its merged (credential) identity, or a did:pkh identity created on first use.

    Raises ValueError when `address` is not an Ethereum address.
    """
    if not is_address(address):
        raise ValueError(f"{address!r} is not an Ethereum address")
    address = to_checksum_address(address)
    link = IdentityWallet.objects.select_related("identity").filter(address=address).first()
    if link is not None:
        return identity_root(identity=link.identity)
    try:
        with transaction.atomic():
            identity, _ = Identity.objects.get_or_create(
                did=pkh_did(address=address), defaults={"kind": Identity.Kind.PKH}
            )
            IdentityWallet.objects.create(address=address, identity=identity)
    except IntegrityError:  # a concurrent request linked it first
        identity = IdentityWallet.objects.select_related("identity").get(address=address).identity
    return identity_root(identity=identity)


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


@dataclass(frozen=True)
class _Credential:
    subject: str
    nullifier: str
    expires_at: int
    message: dict


def _credential_parse(credential: dict, wallet: str) -> _Credential:
    try:
        subject = to_checksum_address(credential["subject"])
        nullifier = str(credential["nullifier"]).lower()
        expires_at = int(credential["expiresAt"])
        message = eip712.credential_typed_data(
            chain_id=settings.CHAIN_ID, subject=subject, nullifier=nullifier, expires_at=expires_at
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CredentialError(f"The credential is malformed: {exc}") from exc
    if subject != to_checksum_address(wallet):
        raise CredentialError(
            f"This credential is for {subject}, not for your wallet {to_checksum_address(wallet)}."
        )
    if _ts(expires_at) <= timezone.now():
        raise CredentialError("This credential has expired; ask the issuer for a new one.")
    return _Credential(subject, nullifier, expires_at, message)


def _credential_issuer(parsed: _Credential, signature: str) -> TrustedIssuer:
    try:
        issuer_address = eip712.recover_signer(parsed.message, signature)
    except eip712.SignatureError as exc:
        raise CredentialError(f"The credential's signature is invalid: {exc}") from exc
    issuer = TrustedIssuer.objects.filter(address__iexact=issuer_address).first()
    if issuer is None or not issuer.active:
        raise CredentialError(
            f"The credential was signed by {issuer_address}, which is not an active trusted issuer."
        )
    return issuer


@transaction.atomic
def identity_link_credential(*, wallet: str, credential: dict, signature: str) -> Identity:
    """Verify a trusted issuer's EIP-712 UniquenessCredential for `wallet` and link the wallet to that person.

    `credential` = {"subject": address, "nullifier": 0x bytes32, "expiresAt": unix seconds}. The wallet's
    did:pkh identity is merged into the nullifier identity, so bans of one apply to all the person's wallets.
    Locks both identity rows (pk order). Raises CredentialError (malformed, another wallet's, expired, bad
    signature, untrusted issuer, wallet already linked to another person).
    """
    parsed = _credential_parse(credential, wallet)
    issuer = _credential_issuer(parsed, signature)
    current = identity_for_wallet(address=parsed.subject)
    person, _ = Identity.objects.get_or_create(
        nullifier=parsed.nullifier,
        defaults={
            "did": f"did:bcfl:nullifier:{parsed.nullifier}",
            "kind": Identity.Kind.NULLIFIER,
            "issuer": issuer,
        },
    )
    locked = identities_lock(identity_ids=[current.pk, person.pk])
    current, person = locked[current.pk], locked[person.pk]
    if current.pk != person.pk and current.kind == Identity.Kind.NULLIFIER:
        raise CredentialError("This wallet is already linked to a different person's credential.")
    person.issuer = issuer
    person.credential = {
        "subject": parsed.subject,
        "nullifier": parsed.nullifier,
        "expiresAt": parsed.expires_at,
        "signature": signature,
    }
    person.credential_expires_at = _ts(parsed.expires_at)
    person.save(update_fields=["issuer", "credential", "credential_expires_at"])
    if current.pk != person.pk:
        Identity.objects.filter(pk=current.pk).update(merged_into=person)
        IdentityWallet.objects.filter(address=parsed.subject).update(identity=person)
    return person
