"""The marketplace operations answer real objects with their documented bodies (schemathesis validation): fuzzed
ids rarely exist, so tests/bcfl_site/api/test_conformance.py mostly sees 401/403/404 from them."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.bcfl_site.api.test_conformance import schema
from tests.marketplace.factories import LicenceFactory, LicenceTermsFactory, ModelTokenFactory
from tests.training.factories import FinalModelFactory, RoundFactory


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.mark.django_db
def test_marketplace_reads_and_links_match_the_schema():
    token = ModelTokenFactory()
    FinalModelFactory(task=token.task, source_round=RoundFactory(task=token.task, run__task=token.task))
    LicenceTermsFactory(token=token)
    owner = token.task.creator
    LicenceFactory(token=token, buyer=owner.username)
    headers = {"Authorization": f"Token {Token.objects.create(user=owner).key}"}
    reads = [
        ("/api/v1/models/", {}, {"licence_for_sale": "true", "sort": "-licence_price"}),
        ("/api/v1/models/{token_id}/", {"token_id": token.token_id}, {}),
        ("/api/v1/models/{token_id}/licence-terms/", {"token_id": token.token_id}, {}),
        ("/api/v1/listings/", {}, {}),
        ("/api/v1/licences/mine/", {}, {}),
    ]
    for path, path_parameters, query in reads:
        case = schema[path]["GET"].Case(path_parameters=path_parameters, query=query, headers=headers)
        response = case.call_and_validate()
        assert response.status_code == 200, (path, response.text)
    links = schema["/api/v1/models/{token_id}/downloads/"]["POST"].Case(
        path_parameters={"token_id": token.token_id}, headers=headers
    )
    response = links.call_and_validate()
    assert response.status_code == 200 and response.json()["files"]
    confirm = schema["/api/v1/purchases/confirm/"]["POST"].Case(
        body={"tx_hash": "0x" + "ab" * 32}, headers=headers, media_type="application/json"
    )
    assert confirm.call_and_validate().status_code == 409  # not mined (no chain): documented
