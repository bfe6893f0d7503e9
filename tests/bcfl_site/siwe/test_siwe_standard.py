"""What EIP-4361 allows: every such message is accepted, or refused with an error that names the field.

Run through the CLI's token endpoint (the same verification serves the browser, see test_siwe_session).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bcfl_site.siwe.testing import siwe_message_build, siwe_sign

pytestmark = pytest.mark.django_db

NONCE_URL = "/api/v1/auth/siwe/nonce"
TOKEN_URL = "/api/v1/auth/siwe/token"


def _iso(dt):
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def api():
    return APIClient(enforce_csrf_checks=True)


def sign_in(api, account, *, signature_of=None, **overrides):
    """Nonce → message (with overrides) → signature (or ``signature_of(signature)``) → token response."""
    challenge = api.post(NONCE_URL).json()
    message = siwe_message_build(challenge, address=account.address, **overrides)
    signature = siwe_sign(message, account)
    if signature_of is not None:
        signature = signature_of(signature)
    return api.post(TOKEN_URL, {"message": message, "signature": signature}, format="json")


def assert_accepted(response, account):
    assert response.status_code == 200, response.content
    assert response.json()["address"] == account.address
    assert Token.objects.filter(key=response.json()["token"]).exists()


def assert_refused(response, code: str, *phrases: str):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code, body
    for phrase in phrases:
        assert phrase in body["error"], body


# --- signatures -----------------------------------------------------------------------------------


def test_signature_without_0x_prefix_is_accepted(api, wallet):
    # eth-account 0.13 prints signature.hex() without 0x
    assert_accepted(sign_in(api, wallet, signature_of=lambda sig: sig.removeprefix("0x")), wallet)


def test_signature_with_upper_case_hex_is_accepted(api, wallet):
    assert_accepted(sign_in(api, wallet, signature_of=lambda sig: "0x" + sig[2:].upper()), wallet)


@pytest.mark.parametrize("bad", ["zz" * 65, "0x" + "ab" * 64 + "a", "0x0x" + "ab" * 65, "ab" * 4097])
def test_malformed_signature_says_what_a_signature_looks_like(api, wallet, bad):
    response = sign_in(api, wallet, signature_of=lambda _sig: bad)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "130 hex digits, with or without a 0x prefix" in body["fields"]["signature"][0]


@pytest.mark.parametrize("bad", ["0x1234", "0x" + "ab" * 64, "ab" * 66, "0x"])
def test_hex_of_another_length_from_an_ordinary_account_says_what_a_signature_looks_like(api, wallet, bad):
    # Contract wallets (EIP-1271) may sign with any length of hex; an address without code needs 65 bytes.
    response = sign_in(api, wallet, signature_of=lambda _sig: bad)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "signature_malformed"
    assert "130 hex digits, with or without a 0x prefix" in body["error"]


def test_browser_accepts_a_signature_without_0x(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, wallet).removeprefix("0x"))
    assert response.status_code == 200, response.content


def test_browser_garbage_signature_says_what_a_signature_looks_like(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, "not-hex")
    assert response.json()["code"] == "signature_malformed"
    assert "130 hex digits, with or without a 0x prefix" in response.json()["error"]


# --- optional fields --------------------------------------------------------------------------------


def test_message_without_expiration_time_is_accepted(api, wallet):
    assert_accepted(sign_in(api, wallet, expiration_time=None), wallet)


def test_past_expiration_time_is_refused_naming_the_field(api, wallet):
    now = timezone.now()
    response = sign_in(
        api,
        wallet,
        issued_at=_iso(now - timedelta(minutes=2)),
        expiration_time=_iso(now - timedelta(minutes=1)),
    )
    assert_refused(response, "expired", "Expiration Time")


def test_past_not_before_is_accepted(api, wallet):
    assert_accepted(sign_in(api, wallet, not_before=_iso(timezone.now() - timedelta(minutes=1))), wallet)


def test_future_not_before_is_refused_naming_the_field(api, wallet):
    response = sign_in(api, wallet, not_before=_iso(timezone.now() + timedelta(minutes=5)))
    assert_refused(response, "not_yet_valid", "Not Before", "in the future")


def test_request_id_and_resources_are_accepted(api, wallet):
    resources = [
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "https://example.com/my-web2-claim.json",
        "urn:isbn:0451450523",
    ]
    assert_accepted(sign_in(api, wallet, request_id="req-42", resources=resources), wallet)


def test_all_optional_fields_together_are_accepted(api, wallet):
    now = timezone.now()
    response = sign_in(
        api,
        wallet,
        scheme="http",
        statement=None,
        not_before=_iso(now - timedelta(seconds=5)),
        request_id="r1",
        resources=["https://testserver/terms"],
    )
    assert_accepted(response, wallet)


def test_empty_request_id_is_refused_naming_the_field(api, wallet):
    assert_refused(sign_in(api, wallet, request_id=""), "malformed", "Request ID is empty")


def test_resources_without_entries_are_refused_naming_the_field(api, wallet):
    assert_refused(sign_in(api, wallet, resources=[]), "malformed", "Resources lists no URI")


def test_chain_id_with_leading_zero_is_refused_naming_the_field(api, wallet):
    assert_refused(sign_in(api, wallet, chain_id="031337"), "malformed", "Chain ID", "canonical")


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"chain_id": "x"}, "Chain ID must be a decimal number"),
        ({"issued_at": "yesterday"}, "Issued At must be an RFC 3339 date-time"),
        ({"expiration_time": "2030-01-01"}, "Expiration Time must be an RFC 3339 date-time"),
        ({"not_before": "soon"}, "Not Before must be an RFC 3339 date-time"),
        ({"request_id": "two words"}, "Request ID must be"),
        ({"statement": "Grüße"}, "the statement may only hold ASCII"),
        ({"domain": "a/b"}, "the first line"),
        ({"issued_at": "2026-01-01T23:59:60Z"}, "Issued At is not valid"),
        ({"issued_at": "2026-01-01T00:00:00z"}, "Issued At is not valid"),
    ],
)
def test_unparseable_fields_are_named(api, wallet, overrides, phrase):
    assert_refused(sign_in(api, wallet, **overrides), "malformed", phrase)


def test_scheme_must_match_the_site(api, wallet):
    assert_refused(sign_in(api, wallet, scheme="https"), "scheme", "scheme 'https', not 'http'")
