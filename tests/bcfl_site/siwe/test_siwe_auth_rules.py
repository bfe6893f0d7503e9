"""allauth integration: staff-only password login, closed sign-up, POST logout, the login page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from bcfl_site.siwe.forms import STAFF_ONLY_MESSAGE

pytestmark = pytest.mark.django_db

NO_WALLET = "No Ethereum wallet found in this browser"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(username="admin1", password="correct-horse-9", is_staff=True)


@pytest.fixture
def participant(db):
    return get_user_model().objects.create_user(username="bob", password="correct-horse-9")


def test_staff_password_login_works(client, staff):
    response = client.post(reverse("account_login"), {"login": "admin1", "password": "correct-horse-9"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_non_staff_password_login_is_refused(client, participant):
    response = client.post(reverse("account_login"), {"login": "bob", "password": "correct-horse-9"})
    assert response.status_code == 200
    assert STAFF_ONLY_MESSAGE in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_wallet_user_has_no_password_login(client, browser, wallet):
    assert browser.sign_in(wallet).status_code == 200
    response = client.post(reverse("account_login"), {"login": wallet.address, "password": "guess-1234"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_signup_is_closed(client):
    response = client.get(reverse("account_signup"))
    assert "No sign-up needed" in response.content.decode()
    assert (
        client.post(reverse("account_signup"), {"username": "eve", "password1": "x" * 12}).status_code == 200
    )
    assert not get_user_model().objects.filter(username="eve").exists()


def test_logout_needs_post(client, staff):
    client.force_login(staff)
    # GET shows a confirmation form and keeps the session
    page = client.get(reverse("account_logout"))
    assert page.status_code == 200
    assert 'method="post"' in page.content.decode()
    assert "_auth_user_id" in client.session
    # POST signs out
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_logout_post_requires_csrf(staff):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    assert csrf_client.post(reverse("account_logout")).status_code == 403
    assert "_auth_user_id" in csrf_client.session


def test_login_page_shows_wallet_button_and_no_wallet_explanation(client):
    response = client.get(reverse("account_login") + "?next=/api/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Sign in with wallet" in html
    assert 'data-wallet-signin data-next="/api/docs/"' in html
    assert NO_WALLET in html
    assert "participant CLI" in html
    assert "js/wallet.js" in html
    assert 'data-chain-id="31337"' in html
    assert "csrfmiddlewaretoken" in html


def test_login_template_renders_explanation_without_request_user():
    request = RequestFactory().get("/accounts/login/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    html = render_to_string("account/login.html", {"form": None}, request=request)
    assert NO_WALLET in html
    assert "Install MetaMask" in html
