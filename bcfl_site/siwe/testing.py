"""Helpers for tests and scripts that sign in with a local key (eth_account), e.g. the participant CLI tests.

Not imported by the app itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from bcfl_site.siwe.services import STATEMENT


def siwe_message_build(challenge: Mapping[str, Any], *, address: str, **overrides: Any) -> str:
    """The EIP-4361 text for ``challenge`` (a nonce response), as wallet.js builds it.

    ``overrides`` replace challenge fields (domain, uri, chain_id, nonce, issued_at, expiration_time,
    statement) or add the optional ``scheme``, ``not_before``, ``request_id`` and ``resources`` (a list
    of URIs). A value of None (or "" for expiration_time / not_before) drops an optional line; a
    statement of None drops the statement.
    """
    f = {"statement": STATEMENT, **challenge, **overrides}
    header = f"{f['domain']} wants you to sign in with your Ethereum account:"
    if f.get("scheme"):
        header = f"{f['scheme']}://{header}"
    lines = [header, address, ""]
    if f["statement"] is not None:
        lines.append(f["statement"])
    lines += [
        "",
        f"URI: {f['uri']}",
        "Version: 1",
        f"Chain ID: {f['chain_id']}",
        f"Nonce: {f['nonce']}",
        f"Issued At: {f['issued_at']}",
    ]
    if f.get("expiration_time"):
        lines.append(f"Expiration Time: {f['expiration_time']}")
    if f.get("not_before"):
        lines.append(f"Not Before: {f['not_before']}")
    if f.get("request_id") is not None:
        lines.append(f"Request ID: {f['request_id']}")
    if f.get("resources") is not None:
        lines += ["Resources:", *(f"- {uri}" for uri in f["resources"])]
    return "\n".join(lines)


def siwe_sign(message: str, account: LocalAccount) -> str:
    """EIP-191 personal_sign of ``message`` as 0x-prefixed hex, like a browser wallet returns it."""
    signed = Account.sign_message(encode_defunct(text=message), private_key=account.key)
    return "0x" + signed.signature.hex().removeprefix("0x")


def siwe_api_token(client, account: LocalAccount) -> str:
    """Obtain a DRF token for ``account`` through the public API with a Django/DRF test client."""
    challenge = client.post("/api/v1/auth/siwe/nonce").json()
    message = siwe_message_build(challenge, address=account.address)
    response = client.post(
        "/api/v1/auth/siwe/token",
        {"message": message, "signature": siwe_sign(message, account)},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]
