"""Every marketplace admin changelist renders with rows in it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.marketplace.factories import LicenceFactory, LicenceTermsFactory


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["modeltoken", "listing", "licenceterms", "licence", "nftsale", "purchase"])
def test_changelists_render(admin_client, model):
    LicenceTermsFactory(token=LicenceFactory().token)
    assert admin_client.get(reverse(f"admin:marketplace_{model}_changelist")).status_code == 200
