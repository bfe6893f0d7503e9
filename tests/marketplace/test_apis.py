"""Marketplace API: who may download and predict (anonymous 401, others and expired licences 403, the owner and
licensees 200), signed links bound to user and file, prediction errors and rate limit, a constant number of SQL
queries per page of the model list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.serializers import ModelSerializer
from rest_framework.test import APIClient

from marketplace import apis, selectors, token_columns
from marketplace.models import Listing
from marketplace.serializers import ModelOutputSerializer
from tests.marketplace.factories import LicenceFactory, LicenceTermsFactory, ModelTokenFactory
from tests.tasks.factories import UserFactory
from tests.training.factories import FinalModelFactory, RoundFactory


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def client_of(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def token(db):
    """A model NFT whose final model has weights and a card (no ONNX export yet)."""
    tok = ModelTokenFactory()
    rnd = RoundFactory(task=tok.task, run__task=tok.task)
    FinalModelFactory(
        task=tok.task,
        source_round=rnd,
        file=ContentFile(b"safetensors-bytes", name="model.safetensors"),
        card=ContentFile(b"# Model card\n", name="README.md"),
    )
    return tok


def _licensee(token, **kwargs):
    user = UserFactory()
    LicenceFactory(token=token, buyer=user.username, **kwargs)
    return user


def _links(token, user):
    return client_of(user).post(f"/api/v1/models/{token.token_id}/downloads/")


def test_download_links_only_for_owner_and_valid_licensees(token):
    owner = token.task.creator
    expired = _licensee(token, expires_at=timezone.now() - dt.timedelta(seconds=1))
    perpetual = _licensee(token, expires_at=None)
    assert _links(token, None).status_code == 401
    assert _links(token, UserFactory()).status_code == 403
    assert _links(token, expired).status_code == 403
    for user in (owner, _licensee(token), perpetual):
        response = _links(token, user)
        assert response.status_code == 200, response.json()
        kinds = [f["kind"] for f in response.json()["files"]]
        assert kinds == ["weights", "card", "example"] and response.json()["expires_in_s"] == 300


def test_signed_links_serve_private_files_to_their_user_only(token):
    owner = token.task.creator
    files = {f["kind"]: f["url"] for f in _links(token, owner).json()["files"]}
    client = client_of(owner)
    weights = client.get(files["weights"])
    assert weights.status_code == 200 and b"".join(weights.streaming_content) == b"safetensors-bytes"
    assert "model.safetensors" in weights["Content-Disposition"]
    example = client.get(files["example"])
    assert b"onnxruntime" in example.content and b"safetensors" in example.content
    # another user with the link, an altered link, an expired link
    assert client_of(UserFactory()).get(files["weights"]).status_code == 403
    assert client.get(files["weights"].replace("/downloads/", "/downloads/x")).status_code == 400
    later = timezone.now() + dt.timedelta(minutes=6)
    import time as time_module

    real = time_module.time
    try:
        time_module.time = lambda: later.timestamp()
        expired = client.get(files["card"])
    finally:
        time_module.time = real
    assert expired.status_code == 400 and expired.json()["code"] == "link_expired"


def test_access_ends_when_the_licence_expires(token):
    user = _licensee(token, expires_at=timezone.now() + dt.timedelta(seconds=2))
    url = next(f["url"] for f in _links(token, user).json()["files"] if f["kind"] == "card")
    token.licences.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client_of(user).get(url).status_code == 403


def test_predict_permissions_readiness_and_input_errors(token):
    url = f"/api/v1/models/{token.token_id}/predict/"
    body = {"csv": "1,2,3,4\n"}
    assert client_of(None).post(url, body, format="json").status_code == 401
    assert client_of(UserFactory()).post(url, body, format="json").status_code == 403
    expired = _licensee(token, expires_at=timezone.now() - dt.timedelta(days=1))
    assert client_of(expired).post(url, body, format="json").status_code == 403
    not_ready = client_of(token.task.creator).post(url, body, format="json")
    assert not_ready.status_code == 409 and not_ready.json()["code"] == "model_not_ready"


@pytest.mark.django_db
def test_predict_with_a_real_model_owner_and_licensee(settings):
    from tests.training.trained import digits_final_model
    from training.services.exports import final_model_onnx_export

    final = digits_final_model("mlp")
    final_model_onnx_export(final_model=final)
    token = ModelTokenFactory(task=final.task, owner=final.task.creator.username)
    url = f"/api/v1/models/{token.token_id}/predict/"
    row = ",".join(["0"] * 64)
    for user in (final.task.creator, _licensee(token)):
        response = client_of(user).post(url, {"csv": f"{row}\n{row}\n"}, format="json")
        assert response.status_code == 200, response.json()
        assert len(response.json()["predictions"]) == 2
    bad = client_of(final.task.creator).post(url, {"csv": "1,2,3\n"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "column_count"
    upload = ContentFile(f"{row}\n".encode(), name="rows.csv")
    multipart = client_of(final.task.creator).post(url, {"file": upload}, format="multipart")
    assert multipart.status_code == 200 and len(multipart.json()["predictions"]) == 1


def test_predict_is_rate_limited(token, monkeypatch):
    monkeypatch.setattr(apis.PredictThrottle, "rate", "3/min")
    client = client_of(token.task.creator)
    url = f"/api/v1/models/{token.token_id}/predict/"
    codes = [client.post(url, {"csv": "1\n"}, format="json").status_code for _ in range(4)]
    assert codes == [409, 409, 409, 429]


def _models(n: int):
    for _ in range(n):
        tok = ModelTokenFactory()
        LicenceTermsFactory(token=tok)
        LicenceFactory(token=tok)


@pytest.mark.django_db
def test_model_list_costs_the_same_queries_for_any_page_size(django_assert_num_queries, settings):
    client = APIClient()
    _models(3)
    with django_assert_num_queries(2):  # count + page
        small = client.get("/api/v1/models/?sort=-licence_price&licence_for_sale=true")
    _models(20)
    with django_assert_num_queries(2):
        large = client.get("/api/v1/models/?sort=-licence_price&licence_for_sale=true")
    assert small.json()["count"] == 3 and large.json()["count"] == 23
    assert len(large.json()["results"]) == 23 > len(small.json()["results"])
    first = large.json()["results"][0]
    assert first["licence_price_wei"] == str(10**17) and first["licences_sold"] == 1


@pytest.mark.django_db
def test_model_list_filters_search_and_detail():
    a, b = ModelTokenFactory(task__title="Digits classifier"), ModelTokenFactory(task__title="Iris model")
    LicenceTermsFactory(token=a)
    client = APIClient()
    assert [m["token_id"] for m in client.get("/api/v1/models/?q=digits").json()["results"]] == [a.token_id]
    assert [
        m["token_id"] for m in client.get("/api/v1/models/?licence_for_sale=false").json()["results"]
    ] == [b.token_id]
    assert client.get("/api/v1/models/?sort=bogus").status_code == 400
    detail = client.get(f"/api/v1/models/{a.token_id}/").json()
    assert detail["licence_terms"] == "Non-exclusive research licence." and detail["onnx_ready"] is False
    terms = client.get(f"/api/v1/models/{a.token_id}/licence-terms/").json()
    assert terms["duration_s"] == 30 * 86_400 and terms["price_wei"] == str(10**17)
    assert client.get(f"/api/v1/models/{b.token_id}/licence-terms/").status_code == 404


@pytest.mark.django_db
def test_my_licences_and_confirm_requires_sign_in():
    user = UserFactory()
    LicenceFactory(buyer=user.username)
    LicenceFactory()
    mine = client_of(user).get("/api/v1/licences/mine/").json()
    assert mine["count"] == 1 and mine["results"][0]["valid"] is True
    assert client_of(None).get("/api/v1/licences/mine/").status_code == 401
    assert client_of(None).post("/api/v1/purchases/confirm/", {"tx_hash": "0x" + "1" * 64}).status_code == 401


@pytest.mark.django_db
def test_the_list_serializer_fast_path_equals_drf_generic_output():
    on_sale, bare = ModelTokenFactory(), ModelTokenFactory()
    LicenceTermsFactory(token=on_sale)
    LicenceFactory(token=on_sale)
    Listing.objects.create(token=on_sale, seller=on_sale.owner, price_wei=Decimal(3 * 10**18), active=True)
    token_columns.refresh([on_sale.pk])  # a row created directly: the list columns as a record would set them
    serializer = ModelOutputSerializer()
    rows = list(selectors.model_list())
    assert {r.token_id for r in rows} == {on_sale.token_id, bare.token_id}
    for row in rows:
        assert serializer.to_representation(row) == ModelSerializer.to_representation(serializer, row)
    fast = serializer.to_representation(next(r for r in rows if r.token_id == on_sale.token_id))
    assert fast["nft_price_wei"] == str(3 * 10**18) and fast["licences_sold"] == 1
    assert fast["licence_duration_s"] == 30 * 86_400
