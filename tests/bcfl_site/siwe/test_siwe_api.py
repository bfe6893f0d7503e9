"""Participant CLI: nonce + signed message -> DRF token, same verification path, no session."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bcfl_site.siwe.models import SiweNonce
from bcfl_site.siwe.testing import siwe_api_token, siwe_message_build, siwe_sign

pytestmark = pytest.mark.django_db

NONCE_URL = "/api/v1/auth/siwe/nonce"
TOKEN_URL = "/api/v1/auth/siwe/token"


@pytest.fixture
def api():
    return APIClient(enforce_csrf_checks=True)


def _signed(api, account, **overrides):
    challenge = api.post(NONCE_URL).json()
    message = siwe_message_build(challenge, address=account.address, **overrides)
    return challenge, message, siwe_sign(message, account)


def test_nonce_endpoint_returns_the_challenge(api):
    response = api.post(NONCE_URL)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"nonce", "domain", "uri", "chain_id", "issued_at", "expiration_time", "statement"}
    assert (body["domain"], body["uri"], body["chain_id"]) == ("testserver", "http://testserver/", 31337)
    row = SiweNonce.objects.get(nonce=body["nonce"])
    assert (row.purpose, row.session_key, row.used_at) == ("token", "", None)


def test_token_for_signed_message(api, wallet):
    # given
    _challenge, message, signature = _signed(api, wallet)
    # when
    response = api.post(TOKEN_URL, {"message": message, "signature": signature}, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["address"] == wallet.address
    token = Token.objects.get(key=body["token"])
    assert token.user.username == wallet.address
    assert "_auth_user_id" not in api.session
    # and the token authenticates API requests
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/schema/").status_code == 200


def test_token_is_stable_across_sign_ins(api, wallet):
    assert siwe_api_token(api, wallet) == siwe_api_token(api, wallet)


def test_token_endpoint_rejects_reused_nonce(api, wallet):
    _challenge, message, signature = _signed(api, wallet)
    assert api.post(TOKEN_URL, {"message": message, "signature": signature}, format="json").status_code == 200
    response = api.post(TOKEN_URL, {"message": message, "signature": signature}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "nonce_used"


def test_token_endpoint_rejects_another_key(api, wallet, other_wallet):
    challenge = api.post(NONCE_URL).json()
    message = siwe_message_build(challenge, address=wallet.address)
    response = api.post(
        TOKEN_URL, {"message": message, "signature": siwe_sign(message, other_wallet)}, format="json"
    )
    assert response.status_code == 400
    assert f"not made by {wallet.address}" in response.json()["error"]
    assert not Token.objects.exists()


def test_token_endpoint_rejects_wrong_chain(api, wallet):
    _challenge, message, signature = _signed(api, wallet, chain_id=1)
    response = api.post(TOKEN_URL, {"message": message, "signature": signature}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "chain_id"


def test_browser_nonce_cannot_get_a_token(browser, api, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = api.post(
        TOKEN_URL, {"message": message, "signature": siwe_sign(message, wallet)}, format="json"
    )
    assert response.status_code == 400
    assert "issued for browser sign-in" in response.json()["error"]


def test_token_endpoint_validates_input(api):
    response = api.post(TOKEN_URL, {"message": "x"}, format="json")
    assert response.status_code == 400
    assert "signature" in response.json()["fields"]  # the API's error shape: {error, code, fields}


def test_endpoints_are_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/auth/siwe/nonce" in schema["paths"]
    token_op = schema["paths"]["/api/v1/auth/siwe/token"]["post"]
    assert token_op["operationId"] == "auth_siwe_token"
    assert "200" in token_op["responses"]
