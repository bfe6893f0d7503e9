"""Browser wallet sign-in: the happy path and one test per attack (clear error, no session)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from bcfl_site.siwe.models import SiweNonce
from bcfl_site.siwe.services import siwe_nonce_issue
from bcfl_site.siwe.testing import siwe_message_build, siwe_sign

pytestmark = pytest.mark.django_db


def _iso(dt):
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assert_rejected(response, browser, text: str, code: str | None = None) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert text in body["error"]
    if code:
        assert body["code"] == code
    assert "_auth_user_id" not in browser.session


# --- happy path ---------------------------------------------------------------------------------


def test_sign_in_with_real_key_creates_user_and_session(browser, wallet):
    # given
    challenge = browser.challenge(wallet.address.lower())
    message = siwe_message_build(challenge, address=challenge["address"])
    # when
    response = browser.verify(message, siwe_sign(message, wallet), address=challenge["address"])
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {"address": wallet.address, "redirect": "/"}
    user = get_user_model().objects.get(username=wallet.address)
    assert browser.session["_auth_user_id"] == str(user.pk)
    assert not user.has_usable_password()
    assert challenge["address"] == wallet.address  # the server checksums the wallet's lowercase address
    assert challenge["domain"] == "testserver"
    assert challenge["uri"] == "http://testserver/"
    assert challenge["chain_id"] == 31337
    assert SiweNonce.objects.get(nonce=challenge["nonce"]).used_at is not None
    page = browser.client.get("/")
    assert wallet.address[:11] in page.content.decode()  # base.html shows the (truncated) username


def test_second_sign_in_reuses_the_user_and_honours_next(browser, wallet):
    # given
    assert browser.sign_in(wallet).status_code == 200
    browser.client.post(reverse("account_logout"), HTTP_X_CSRFTOKEN=browser.client.cookies["csrftoken"].value)
    # when
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, wallet), next="/api/docs/")
    # then
    assert response.json()["redirect"] == "/api/docs/"
    assert get_user_model().objects.filter(username=wallet.address).count() == 1


def test_offsite_next_is_ignored(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, wallet), next="https://evil.example/")
    assert response.json()["redirect"] == "/"


def test_inactive_user_gets_no_session(browser, wallet):
    get_user_model().objects.create(username=wallet.address, is_active=False)
    response = browser.sign_in(wallet)
    assert response.status_code == 403
    assert "inactive" in response.json()["error"]
    assert "_auth_user_id" not in browser.session


# --- attacks ------------------------------------------------------------------------------------


def test_reused_nonce_is_rejected(browser, wallet):
    # given: a successful sign-in, then sign-out
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    signature = siwe_sign(message, wallet)
    assert browser.verify(message, signature).status_code == 200
    browser.client.post(reverse("account_logout"), HTTP_X_CSRFTOKEN=browser.client.cookies["csrftoken"].value)
    assert "_auth_user_id" not in browser.session
    # when: the same signed message is replayed
    response = browser.verify(message, signature)
    # then
    assert_rejected(response, browser, "already been used", "nonce_used")


def test_failed_attempt_burns_the_nonce(browser, wallet, other_wallet):
    # given: a first attempt with a bad signature
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    assert browser.verify(message, siwe_sign(message, other_wallet)).status_code == 400
    # when: the right signature comes second
    response = browser.verify(message, siwe_sign(message, wallet))
    # then
    assert_rejected(response, browser, "already been used", "nonce_used")


def test_unknown_nonce_is_rejected(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address, nonce="0123456789abcdef0123456789abcdef")
    response = browser.verify(message, siwe_sign(message, wallet))
    assert_rejected(response, browser, "Unknown sign-in nonce", "nonce_unknown")


def test_nonce_from_another_session_is_rejected(browser, wallet):
    # given: a nonce issued to some other browser session
    challenge = browser.challenge(wallet.address)
    other = siwe_nonce_issue(
        purpose=SiweNonce.Purpose.SESSION, domain="testserver", uri="http://testserver/", session_key="x" * 32
    )
    message = siwe_message_build(challenge, address=wallet.address, nonce=other.nonce)
    # when
    response = browser.verify(message, siwe_sign(message, wallet))
    # then
    assert_rejected(response, browser, "not issued to this browser session", "nonce_session")


def test_api_token_nonce_cannot_sign_in_a_browser(browser, wallet):
    api_challenge = browser.client.post("/api/v1/auth/siwe/nonce").json()
    message = siwe_message_build(api_challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, wallet))
    assert_rejected(response, browser, "issued for an API token", "nonce_purpose")


def test_expired_nonce_is_rejected(browser, wallet):
    challenge = browser.challenge(wallet.address)
    SiweNonce.objects.filter(nonce=challenge["nonce"]).update(
        created_at=timezone.now() - timedelta(minutes=20), expires_at=timezone.now() - timedelta(minutes=10)
    )
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, wallet))
    assert_rejected(response, browser, "nonce has expired", "nonce_expired")


def test_wrong_domain_is_rejected(browser, wallet):
    response = browser.sign_in(wallet, domain="evil.example")
    assert_rejected(response, browser, "signed for domain 'evil.example', not 'testserver'", "domain")


def test_wrong_uri_is_rejected(browser, wallet):
    response = browser.sign_in(wallet, uri="https://evil.example/")
    assert_rejected(response, browser, "signed for URI 'https://evil.example/'", "uri")


def test_wrong_chain_id_is_rejected(browser, wallet):
    response = browser.sign_in(wallet, chain_id=1)
    assert_rejected(response, browser, "chain id 1, but BCFL runs on chain id 31337", "chain_id")


def test_expired_message_is_rejected(browser, wallet):
    now = timezone.now()
    response = browser.sign_in(
        wallet, issued_at=_iso(now - timedelta(minutes=5)), expiration_time=_iso(now - timedelta(seconds=1))
    )
    assert_rejected(response, browser, "sign-in message has expired", "expired")


def test_not_yet_valid_message_is_rejected(browser, wallet):
    response = browser.sign_in(wallet, not_before=_iso(timezone.now() + timedelta(minutes=5)))
    assert_rejected(response, browser, "not valid yet", "not_yet_valid")


def test_message_issued_in_the_future_is_rejected(browser, wallet):
    response = browser.sign_in(wallet, issued_at=_iso(timezone.now() + timedelta(minutes=5)))
    assert_rejected(response, browser, "issued in the future", "not_yet_valid")


def test_malformed_message_is_rejected_and_burns_its_nonce(browser, wallet):
    # given
    challenge = browser.challenge(wallet.address)
    garbage = f"please log me in\nNonce: {challenge['nonce']}"
    # when
    response = browser.verify(garbage, siwe_sign(garbage, wallet))
    # then
    assert_rejected(response, browser, "Malformed sign-in message", "malformed")
    message = siwe_message_build(challenge, address=wallet.address)
    assert_rejected(browser.verify(message, siwe_sign(message, wallet)), browser, "already been used")


def test_message_without_nonce_is_malformed(browser, wallet):
    response = browser.verify("hello", siwe_sign("hello", wallet))
    assert_rejected(response, browser, "Malformed sign-in message", "malformed")


def test_message_without_expiration_is_accepted(browser, wallet):
    # EIP-4361 makes Expiration Time optional; the single-use, expiring nonce bounds the message's life.
    response = browser.sign_in(wallet, expiration_time=None)
    assert response.status_code == 200, response.content
    assert browser.session["_auth_user_id"]


def test_signature_from_another_key_is_rejected(browser, wallet, other_wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, other_wallet))
    assert_rejected(response, browser, f"signature was not made by {wallet.address}", "signature")


def test_wrong_key_while_the_chain_is_down_says_the_chain_could_not_be_asked(
    browser, wallet, other_wallet, fake_chain
):
    # Not the address's own signature: only the chain can tell whether the address is a contract wallet.
    fake_chain.down = True
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, other_wallet))
    assert_rejected(response, browser, "could not ask the chain", "chain_unavailable")


def test_own_signature_needs_no_chain(browser, wallet, fake_chain):
    fake_chain.down = True
    assert browser.sign_in(wallet).status_code == 200


@pytest.mark.parametrize("signature", ["0x" + "00" * 65, "0x" + "ff" * 65])
def test_signature_out_of_range_is_wrong_signer_not_a_crash(browser, wallet, signature):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, signature)
    assert_rejected(response, browser, f"signature was not made by {wallet.address}", "signature")


def test_garbage_signature_is_rejected(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, "0x1234")
    assert_rejected(response, browser, "65-byte hex string", "signature_malformed")


def test_non_checksummed_address_is_rejected(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address.lower())
    response = browser.verify(message, siwe_sign(message, wallet))
    assert_rejected(response, browser, "EIP-55 checksum", "address_checksum")


def test_mismatched_address_is_rejected(browser, wallet, other_wallet):
    # the client claims one account but the signed message names another
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.verify(message, siwe_sign(message, wallet), address=other_wallet.address)
    assert_rejected(response, browser, "does not match the address in the signed message", "address_mismatch")


def test_verify_without_csrf_token_is_refused(browser, wallet):
    challenge = browser.challenge(wallet.address)
    message = siwe_message_build(challenge, address=wallet.address)
    response = browser.post_json(
        reverse("siwe_verify"), {"message": message, "signature": siwe_sign(message, wallet)}, csrf=False
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_nonce_endpoint_needs_post_and_csrf(browser):
    assert browser.client.get(reverse("siwe_nonce")).status_code == 405
    assert browser.post_json(reverse("siwe_nonce"), {}, csrf=False).status_code == 403


def test_statement_mimicking_a_nonce_line_cannot_redirect_the_burn(browser, wallet):
    # given: a statement that looks like someone else's Nonce line
    victim = browser.challenge(wallet.address)
    mine = browser.challenge(wallet.address)
    message = siwe_message_build(mine, address=wallet.address, statement=f"Nonce: {victim['nonce']}")
    # when
    response = browser.verify(message, siwe_sign(message, wallet))
    # then: the real Nonce field was used and burned, the victim's nonce is untouched
    assert response.status_code == 200, response.content
    assert SiweNonce.objects.get(nonce=victim["nonce"]).used_at is None
    assert SiweNonce.objects.get(nonce=mine["nonce"]).used_at is not None
