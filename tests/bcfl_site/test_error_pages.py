"""Refusals and missing pages render in the site's layout and say why (the reason given to PermissionDenied)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.urls import path

from bcfl_site import urls as site_urls

pytestmark = pytest.mark.django_db

REASON = "Only the NFT's owner and holders of an unexpired licence can use this model."


def _refuse(request):
    raise PermissionDenied(REASON)


urlpatterns = [path("refuse/", _refuse), *site_urls.urlpatterns]


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_403_page_says_why_in_the_site_layout(client):
    response = client.get("/refuse/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "You cannot open this page" in body and "holders of an unexpired licence" in body
    assert "Sign in with your wallet" in body  # signed out: offered a way in
    assert 'href="/"' in body  # the site's layout, not a bare page


@override_settings(DEBUG=False)
def test_404_page_in_the_site_layout(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Nothing here" in body and "/no/such/page/" in body
