"""Every marketplace admin changelist renders with rows in it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from marketplace.models import ModelToken
from tests.marketplace.factories import LicenceFactory, LicenceTermsFactory


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["modeltoken", "listing", "licenceterms", "licence", "nftsale", "purchase"])
def test_changelists_render(admin_client, model):
    LicenceTermsFactory(token=LicenceFactory().token)
    assert admin_client.get(reverse(f"admin:marketplace_{model}_changelist")).status_code == 200


@pytest.mark.django_db
def test_deleting_terms_in_the_admin_updates_the_list_columns(admin_client):
    terms = LicenceTermsFactory()
    token = terms.token
    assert ModelToken.objects.get(pk=token.pk).licence_price_wei == terms.price_wei
    response = admin_client.post(
        reverse("admin:marketplace_licenceterms_delete", args=[terms.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert ModelToken.objects.get(pk=token.pk).licence_price_wei is None
    # the columns are shown, not edited
    page = admin_client.get(reverse("admin:marketplace_modeltoken_change", args=[token.pk]))
    assert page.status_code == 200 and 'name="licence_price_wei"' not in page.content.decode()
