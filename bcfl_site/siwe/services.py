"""SIWE (EIP-4361) nonces, verification, users and API tokens.

One verification path, :func:`siwe_message_verify`, serves both the browser session sign-in and the
participant CLI's token endpoint. Order matters:

1. the nonce named in the message text is burned first, in its own committed transaction, so a
   failed attempt (bad signature, wrong domain, ...) can never be retried with the same nonce;
2. the nonce must have been issued for this purpose (and, for browsers, to this session) and be
   unexpired;
3. the message is parsed with the ``siwe`` library, then checked explicitly: domain, URI origin,
   scheme, chain id, expiry, not-before, issued-at, canonical form, claimed address;
4. ``SiweMessage.verify`` checks the signature, and we recover the signer ourselves from the exact
   text that was signed as a second, independent check;
5. when neither recovers the message's address and that address holds contract code, the contract is asked
   (EIP-1271 ``isValidSignature``, ``bcfl_site.siwe.eip1271``): smart-contract wallets such as a Safe sign in
   as their own address.

What is accepted follows EIP-4361: ``Expiration Time`` is optional (the single-use nonce, valid for
``SIWE_NONCE_TTL_SECONDS``, bounds the message's life anyway; if present it must be in the future),
``Not Before`` must be in the past, ``Request ID``, ``Resources`` and the statement are optional and
accepted. Every refusal of a message names the field (``grammar.py``). Signatures are hex, with or without
``0x`` (eth-account prints them without): 65 bytes for an externally owned account, any length up to
``MAX_SIGNATURE_BYTES`` for a contract wallet (a Safe's is 65 bytes per owner, or empty for a message it
approved on chain).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pydantic
import siwe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils import is_checksum_address, is_hex_address
from rest_framework.authtoken.models import Token

from bcfl_site.siwe import grammar
from bcfl_site.siwe.eip1271 import ContractWalletRefusal, contract_wallet_accepts
from bcfl_site.siwe.models import SiweNonce

STATEMENT = "Sign in to BCFL."
MAX_MESSAGE_CHARS = 4096
# Tolerated difference between the server clock and the clock that wrote "Issued At".
CLOCK_SKEW = timedelta(seconds=60)
# Used nonces are kept this long after expiry so a replay reads "already used", not "unknown".
USED_NONCE_RETENTION = timedelta(days=1)

_NONCE_LINE = re.compile(r"^Nonce: ([A-Za-z0-9]+)$", re.MULTILINE)
MAX_SIGNATURE_BYTES = 4096  # a contract wallet's signature (a Safe's: 65 bytes per owner)
EOA_SIGNATURE_BYTES = 65
# Whole bytes of hex; "0x" alone is an empty signature (a Safe's for a message it approved on chain), "" is none.
SIGNATURE_PATTERN = rf"^(?:0[xX](?:[0-9a-fA-F]{{2}}){{0,{MAX_SIGNATURE_BYTES}}}|(?:[0-9a-fA-F]{{2}}){{1,{MAX_SIGNATURE_BYTES}}})$"
_SIGNATURE = re.compile(SIGNATURE_PATTERN)
SIGNATURE_HELP = (
    "The signature must be a 65-byte hex string: 130 hex digits, with or without a 0x prefix "
    "(an EIP-191 personal_sign signature); a smart-contract wallet (EIP-1271) may send hex of another "
    f"length, up to {MAX_SIGNATURE_BYTES} bytes."
)


def nonce_ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "SIWE_NONCE_TTL_SECONDS", 600))


class SiweError(Exception):
    """A rejected sign-in. ``message`` is safe to show to the user; ``code`` is for clients/tests."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SiweChallenge:
    """Everything a client needs to build the EIP-4361 message for one nonce."""

    nonce: str
    domain: str
    uri: str
    chain_id: int
    issued_at: str
    expiration_time: str
    statement: str = STATEMENT


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def siwe_nonce_issue(*, purpose: str, domain: str, uri: str, session_key: str = "") -> SiweChallenge:
    """Store a fresh single-use nonce and return the challenge to sign.

    ``session_key`` is required for ``Purpose.SESSION`` (browser) nonces and must be empty for
    ``Purpose.TOKEN`` (CLI) nonces, which are bound to nothing but still single-use and expiring.
    """
    if purpose == SiweNonce.Purpose.SESSION and not session_key:
        raise ValueError("A browser sign-in nonce must be bound to a session.")
    if purpose == SiweNonce.Purpose.TOKEN and session_key:
        raise ValueError("An API-token nonce is not bound to a session.")
    now = timezone.now()
    SiweNonce.objects.filter(expires_at__lt=now - USED_NONCE_RETENTION).delete()
    row = SiweNonce(
        nonce=secrets.token_hex(16),
        purpose=purpose,
        session_key=session_key,
        created_at=now,
        expires_at=now + nonce_ttl(),
    )
    row.full_clean()
    row.save()
    return SiweChallenge(
        nonce=row.nonce,
        domain=domain,
        uri=uri,
        chain_id=settings.CHAIN_ID,
        issued_at=_iso(now),
        expiration_time=_iso(row.expires_at),
    )


@transaction.atomic(durable=True)
def siwe_nonce_consume(*, nonce: str) -> SiweNonce:
    """Burn ``nonce`` (a conditional UPDATE, so two racing requests cannot both win) and return it.

    Durable: the burn must be committed even if the caller's verification then fails.
    Raises SiweError for an unknown or already used nonce; expiry and binding are the caller's checks.
    """
    burned = SiweNonce.objects.filter(nonce=nonce, used_at__isnull=True).update(used_at=timezone.now())
    if burned == 0:
        if SiweNonce.objects.filter(nonce=nonce).exists():
            raise SiweError(
                "nonce_used", "This sign-in nonce has already been used. Request a new one and sign again."
            )
        raise SiweError("nonce_unknown", "Unknown sign-in nonce. Request a new one and sign again.")
    return SiweNonce.objects.get(nonce=nonce)


def _check_nonce_binding(*, row: SiweNonce, purpose: str, session_key: str, now: datetime) -> None:
    if row.purpose != purpose:
        if purpose == SiweNonce.Purpose.TOKEN:
            raise SiweError(
                "nonce_purpose", "This nonce was issued for browser sign-in, not for an API token."
            )
        raise SiweError("nonce_purpose", "This nonce was issued for an API token, not for browser sign-in.")
    if purpose == SiweNonce.Purpose.SESSION and (not session_key or row.session_key != session_key):
        raise SiweError(
            "nonce_session", "This sign-in nonce was not issued to this browser session. Please try again."
        )
    if row.expires_at <= now:
        raise SiweError("nonce_expired", "This sign-in nonce has expired. Request a new one and sign again.")


def signature_normalize(signature: str) -> str:
    """``signature`` as ``0x`` + its hex digits; SiweError ``signature_malformed`` if it is not whole bytes of
    hex (at most ``MAX_SIGNATURE_BYTES``). The length an EOA needs (65 bytes) is checked by the caller."""
    if not _SIGNATURE.match(signature):
        raise SiweError("signature_malformed", f"{SIGNATURE_HELP} Got {len(signature)} characters.")
    return "0x" + signature[2:] if signature[:2].lower() == "0x" else "0x" + signature


def _parse(message: str) -> siwe.SiweMessage:
    lines = message.split("\n")
    if len(lines) > 1 and is_hex_address(lines[1]) and not is_checksum_address(lines[1]):
        raise SiweError(
            "address_checksum", "The address in the message must be in EIP-55 checksum (mixed-case) form."
        )
    try:
        parsed = siwe.SiweMessage.from_message(message=message, abnf=True)
    except pydantic.ValidationError as exc:
        raise SiweError(
            "malformed", f"Malformed sign-in message: {grammar.field_error(exc.errors())}."
        ) from None
    except ValueError:  # the ABNF parser's error: find the field ourselves
        why = grammar.diagnose(message) or "it is not a valid EIP-4361 message"
        raise SiweError("malformed", f"Malformed sign-in message: {why}.") from None
    if parsed.prepare_message() != message:
        # siwe verifies the signature over its own re-serialisation; insist that equals what was sent.
        why = grammar.canonical_mismatch(message, parsed.prepare_message())
        raise SiweError("malformed", f"Malformed sign-in message: {why}.")
    return parsed


def _dt(value: str, label: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise SiweError(
            "malformed",
            f"Malformed sign-in message: {label} must be an RFC 3339 date-time with a time zone, "
            f"e.g. 2026-01-01T00:00:00Z, not '{value}'.",
        )
    return parsed


def _check_fields(*, parsed: siwe.SiweMessage, nonce: str, domain: str, uri: str, now: datetime) -> None:
    expected = urlsplit(uri)
    if parsed.domain != domain:
        raise SiweError("domain", f"The message was signed for domain '{parsed.domain}', not '{domain}'.")
    if parsed.scheme is not None and parsed.scheme != expected.scheme:
        raise SiweError(
            "scheme", f"The message was signed for scheme '{parsed.scheme}', not '{expected.scheme}'."
        )
    got = urlsplit(parsed.uri)
    if (got.scheme, got.netloc) != (expected.scheme, expected.netloc):
        raise SiweError("uri", f"The message was signed for URI '{parsed.uri}', not '{uri}'.")
    if parsed.chain_id != settings.CHAIN_ID:
        raise SiweError(
            "chain_id",
            f"The message is for chain id {parsed.chain_id}, but BCFL runs on chain id {settings.CHAIN_ID}.",
        )
    if parsed.nonce != nonce:  # the nonce we burned must be the one the parser sees
        raise SiweError("nonce_unknown", "Unknown sign-in nonce. Request a new one and sign again.")
    # No Expiration Time is fine: the nonce is single-use and expires (nonce_ttl), which bounds the message.
    if parsed.expiration_time is not None and _dt(parsed.expiration_time, "Expiration Time") <= now:
        raise SiweError(
            "expired",
            f"The sign-in message has expired (Expiration Time {parsed.expiration_time}). Please sign in again.",
        )
    if parsed.not_before is not None and _dt(parsed.not_before, "Not Before") >= now:
        raise SiweError(
            "not_yet_valid",
            f"The sign-in message is not valid yet: its Not Before ({parsed.not_before}) is in the future.",
        )
    if _dt(parsed.issued_at, "Issued At") > now + CLOCK_SKEW:
        raise SiweError(
            "not_yet_valid",
            "The sign-in message is not valid yet (it was issued in the future: see Issued At).",
        )


def _eoa_signed(
    *, parsed: siwe.SiweMessage, message: str, signature: str, domain: str, now: datetime
) -> bool:
    """Did the message's address sign it with its key? Two independent recoveries must both say so."""
    try:
        # No provider: the library's EIP-1271 path cannot tell its refusals apart (see eip1271.py).
        parsed.verify(signature, domain=domain, nonce=parsed.nonce, timestamp=now)
    except siwe.InvalidSignature:
        return False
    except siwe.ExpiredMessage:
        raise SiweError("expired", "The sign-in message has expired. Please sign in again.") from None
    except siwe.NotYetValidMessage:
        raise SiweError(
            "not_yet_valid", "The sign-in message is not valid yet: its Not Before is in the future."
        ) from None
    except siwe.VerificationError:
        raise SiweError("malformed", "The sign-in message failed verification.") from None
    except BadSignature:  # r or s out of range (e.g. 65 zero bytes): siwe lets eth-keys' error through
        return False
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:  # any recovery failure means a bad signature
        return False
    return signer == parsed.address


def _check_signature(
    *, parsed: siwe.SiweMessage, message: str, signature: str, domain: str, now: datetime
) -> None:
    signature = signature_normalize(signature)
    if _eoa_signed(parsed=parsed, message=message, signature=signature, domain=domain, now=now):
        return
    try:
        if contract_wallet_accepts(
            address=parsed.address, message=message, signature=bytes.fromhex(signature[2:])
        ):
            return
    except ContractWalletRefusal as exc:
        raise SiweError(exc.code, exc.message) from None
    if len(signature) != 2 + 2 * EOA_SIGNATURE_BYTES:  # not a contract: only a 65-byte signature can do
        raise SiweError("signature_malformed", f"{SIGNATURE_HELP} Got {len(signature) - 2} hex digits.")
    raise SiweError("signature", f"The signature was not made by {parsed.address}.")


def siwe_message_verify(
    *,
    message: str,
    signature: str,
    domain: str,
    uri: str,
    purpose: str,
    session_key: str = "",
    claimed_address: str | None = None,
) -> str:
    """Verify a signed EIP-4361 message and return the checksummed signer address.

    ``domain`` is the request host (with port), ``uri`` the site origin the challenge named.
    Burns the message's nonce whatever the outcome. Raises SiweError with a user-facing message.
    """
    if not isinstance(message, str) or not message or len(message) > MAX_MESSAGE_CHARS:
        raise SiweError("malformed", "Malformed sign-in message: it is empty or too long.")
    if not isinstance(signature, str):
        raise SiweError("signature_malformed", SIGNATURE_HELP)
    # The Nonce field follows the statement, so a statement that mimics "Nonce: ..." cannot win.
    found = _NONCE_LINE.findall(message)
    if not found:
        raise SiweError("malformed", "Malformed sign-in message: it has no Nonce line.")
    row = siwe_nonce_consume(nonce=found[-1])
    now = timezone.now()
    _check_nonce_binding(row=row, purpose=purpose, session_key=session_key, now=now)
    parsed = _parse(message)
    _check_fields(parsed=parsed, nonce=row.nonce, domain=domain, uri=uri, now=now)
    if claimed_address is not None and claimed_address != parsed.address:
        raise SiweError(
            "address_mismatch",
            f"The address {claimed_address} does not match the address in the signed message ({parsed.address}).",
        )
    _check_signature(parsed=parsed, message=message, signature=signature, domain=domain, now=now)
    return parsed.address


def user_get_or_create_for_address(*, address: str) -> AbstractBaseUser:
    """The user whose username is the checksummed ``address``; created (unusable password) on first sign-in."""
    if not is_checksum_address(address):
        raise ValueError(f"{address!r} is not an EIP-55 checksummed address.")
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(
        **{user_model.USERNAME_FIELD: address},
        defaults={"password": make_password(None)},  # None -> unusable password
    )
    return user


def siwe_token_issue(*, user: AbstractBaseUser) -> Token:
    """The user's DRF API token (one per user; reused if it exists)."""
    token, _created = Token.objects.get_or_create(user=user)
    return token
