"""Who may download and use a model, through the API: anonymous 401; a stranger, an expired licensee and the
previous owner after the NFT changed hands 403; the new owner and a valid licensee 200 (signed link -> the file's
bytes; predict -> predictions from the real ONNX export)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from marketplace.services.records import record_transfer
from tests.marketplace.factories import LicenceFactory, ModelTokenFactory
from tests.marketplace.test_apis import client_of
from tests.tasks.factories import UserFactory

pytestmark = pytest.mark.django_db
ROW = ",".join(["0"] * 64)


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sold(settings):
    """A real digits model (ONNX exported) whose NFT its creator sold: (token, people by role)."""
    from tests.training.trained import digits_final_model
    from training.services.exports import final_model_onnx_export

    final = digits_final_model("mlp")
    final_model_onnx_export(final_model=final)
    previous = final.task.creator
    token = ModelTokenFactory(task=final.task, owner=previous.username, owner_block=10)
    new_owner, licensee, expired = UserFactory(), UserFactory(), UserFactory()
    LicenceFactory(token=token, buyer=licensee.username)
    LicenceFactory(token=token, buyer=expired.username, expires_at=timezone.now() - dt.timedelta(seconds=1))
    # the sale as the indexer records it: a ModelNFT Transfer to the buyer in a later block
    moved = record_transfer(
        event={"args": {"tokenId": token.token_id, "to": new_owner.username}, "block_number": 11}
    )
    assert moved.owner == new_owner.username
    people = {
        "anonymous": None,
        "stranger": UserFactory(),
        "expired_licensee": expired,
        "previous_owner": previous,
        "new_owner": new_owner,
        "licensee": licensee,
    }
    return token, people


EXPECTED = {
    "anonymous": 401,
    "stranger": 403,
    "expired_licensee": 403,
    "previous_owner": 403,
    "new_owner": 200,
    "licensee": 200,
}


def test_download_and_predict_matrix(sold):
    token, people = sold
    got_links, got_predict = {}, {}
    for role, user in people.items():
        client = client_of(user)
        links = client.post(f"/api/v1/models/{token.token_id}/downloads/")
        got_links[role] = links.status_code
        if links.status_code == 200:
            url = next(f["url"] for f in links.json()["files"] if f["kind"] == "weights")
            file = client.get(url)
            assert (
                file.status_code == 200
                and b"".join(file.streaming_content) == token.task.final_model.file.open().read()
            )
        body = {"csv": f"{ROW}\n{ROW}\n"}
        answer = client.post(f"/api/v1/models/{token.token_id}/predict/", body, format="json")
        got_predict[role] = answer.status_code
        if answer.status_code == 200:
            assert len(answer.json()["predictions"]) == 2
    assert got_links == EXPECTED and got_predict == EXPECTED


def test_a_link_issued_before_the_sale_stops_working_for_the_previous_owner(sold):
    token, people = sold
    new_owner, previous = people["new_owner"], people["previous_owner"]
    url = next(
        f["url"]
        for f in client_of(new_owner).post(f"/api/v1/models/{token.token_id}/downloads/").json()["files"]
        if f["kind"] == "weights"
    )
    assert client_of(previous).get(url).status_code == 403  # bound to its user
    # the NFT moves on again: the link the (now previous) owner holds is refused
    record_transfer(event={"args": {"tokenId": token.token_id, "to": previous.username}, "block_number": 12})
    assert client_of(new_owner).get(url).status_code == 403
    assert client_of(previous).post(f"/api/v1/models/{token.token_id}/downloads/").status_code == 200
