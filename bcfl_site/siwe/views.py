"""Browser wallet sign-in: JSON endpoints used by static/js/wallet.js (CSRF-protected, session-bound)."""

from __future__ import annotations

import json
from dataclasses import asdict

from django.http import HttpRequest, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from eth_utils import is_hex_address, to_checksum_address

from bcfl_site.siwe.models import SiweNonce
from bcfl_site.siwe.provider import siwe_login
from bcfl_site.siwe.services import (
    SiweError,
    siwe_message_verify,
    siwe_nonce_issue,
    user_get_or_create_for_address,
)


def site_origin(request: HttpRequest) -> str:
    """The URI a SIWE message must name: this site's origin, as the client reached it."""
    return f"{request.scheme}://{request.get_host()}/"


def _json_body(request: HttpRequest) -> dict:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except ValueError:
        raise SiweError("bad_request", "Send the request body as JSON.") from None
    if not isinstance(data, dict):
        raise SiweError("bad_request", "Send the request body as a JSON object.")
    return data


def _error(exc: SiweError, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": exc.message, "code": exc.code}, status=status)


@never_cache
@require_POST
def siwe_nonce(request: HttpRequest) -> JsonResponse:
    """Issue a nonce bound to this browser session. Optional ``{"address": "0x..."}`` is echoed checksummed,
    so the page does not need keccak to write the EIP-55 address into the message."""
    try:
        data = _json_body(request)
    except SiweError as exc:
        return _error(exc)
    address = data.get("address")
    if address is not None:
        if not isinstance(address, str) or not is_hex_address(address):
            return _error(SiweError("address", "The wallet returned an invalid Ethereum address."))
        address = to_checksum_address(address)
    if request.session.session_key is None:
        request.session.create()
    challenge = siwe_nonce_issue(
        purpose=SiweNonce.Purpose.SESSION,
        domain=request.get_host(),
        uri=site_origin(request),
        session_key=request.session.session_key,
    )
    return JsonResponse({**asdict(challenge), "address": address})


@never_cache
@require_POST
def siwe_verify(request: HttpRequest) -> JsonResponse:
    """Verify ``{"message", "signature", "address"?, "next"?}`` and log the signer in through allauth."""
    try:
        data = _json_body(request)
        claimed = data.get("address")
        address = siwe_message_verify(
            message=data.get("message"),
            signature=data.get("signature"),
            domain=request.get_host(),
            uri=site_origin(request),
            purpose=SiweNonce.Purpose.SESSION,
            session_key=request.session.session_key or "",
            claimed_address=claimed if isinstance(claimed, str) and claimed else None,
        )
    except SiweError as exc:
        return _error(exc)
    next_url = data.get("next")
    if not (
        isinstance(next_url, str)
        and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        next_url = None
    user = user_get_or_create_for_address(address=address)
    response = siwe_login(request, user=user, redirect_url=next_url)
    if not request.user.is_authenticated:
        return _error(SiweError("inactive", "This account is inactive. Contact the platform admins."), 403)
    return JsonResponse({"address": address, "redirect": response.get("Location") or "/"})
