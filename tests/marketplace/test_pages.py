"""Marketplace pages: browse (search, filters, constant queries), the model page's buttons for each visitor,
my models and purchases (sign-in, content), the owner's licence terms through the views on the fake chain,
downloads, and using a model through the page (licensee yes, others 403)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django import forms
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from marketplace import token_columns
from marketplace.card_markdown import card_html
from marketplace.forms import QuickSelect
from marketplace.models import LicenceTerms
from tests.marketplace.conftest import OWNER_KEY, send
from tests.marketplace.factories import LicenceFactory, LicenceTermsFactory, ModelTokenFactory
from tests.tasks.factories import UserFactory
from tests.training.factories import FinalModelFactory, RoundFactory, StakeAllocationFactory

pytestmark = pytest.mark.django_db


def _model(title="Model", accuracy=0.9, dataset="digits", kind=None, terms=True):
    extra = {"task__model_kind": kind} if kind else {}
    tok = ModelTokenFactory(task__title=title, task__validation_summary={"dataset": dataset}, **extra)
    rnd = RoundFactory(task=tok.task, run__task=tok.task, accuracy=accuracy)
    FinalModelFactory(task=tok.task, source_round=rnd, card=ContentFile(b"# Card\n", name="README.md"))
    if terms:
        LicenceTermsFactory(token=tok)
    return tok


def _rows(client, **params):
    resp = client.get(reverse("marketplace:browse"), params)
    assert resp.status_code == 200
    return resp, [t.token_id for t in resp.context["page"].object_list]


def test_browse_searches_filters_and_sorts(client):
    # given
    digits = _model("Digits classifier", accuracy=0.95, dataset="digits")
    iris = _model("Flower species", accuracy=0.7, dataset="iris", terms=False)
    cheap = _model("Cheap model", accuracy=0.8, dataset="digits")
    cheap.licence_terms.update(price_wei=Decimal(10**15))
    token_columns.refresh([cheap.pk])  # a direct update: the list columns as a record would set them
    # when / then: search by title, by dataset
    resp, ids = _rows(client, q="digits")
    assert set(ids) == {digits.token_id, cheap.token_id}
    assert (
        "Digits classifier" in resp.content.decode()
        and reverse("marketplace:detail", args=[digits.token_id]) in resp.content.decode()
    )
    assert _rows(client, q="iris")[1] == [iris.token_id]
    assert _rows(client, dataset="iris")[1] == [iris.token_id]
    # accuracy range (percent), price range (ETH), licence available
    assert set(_rows(client, accuracy_min=75, accuracy_max=96)[1]) == {digits.token_id, cheap.token_id}
    assert _rows(client, price_max="0.01")[1] == [cheap.token_id]
    assert iris.token_id not in _rows(client, licence="on")[1]
    # sorts
    assert _rows(client, sort="accuracy")[1] == [digits.token_id, cheap.token_id, iris.token_id]
    assert _rows(client, sort="licence_price")[1][0] == cheap.token_id
    # owned by me
    client.force_login(digits.task.creator)
    assert _rows(client, mine="on")[1] == [digits.token_id]


def test_browse_costs_the_same_queries_for_any_page_size(client, django_assert_num_queries):
    for i in range(3):
        tok = _model(f"m{i}")
        LicenceFactory(token=tok)
    # session-less anonymous visitor: datasets for the filter (then cached for a minute), count, page
    with django_assert_num_queries(3):
        small = client.get(reverse("marketplace:browse"), {"per_page": 12, "sort": "sales"})
    for i in range(20):
        _model(f"n{i}")
    with django_assert_num_queries(2):
        client.get(reverse("marketplace:browse"), {"per_page": 48, "sort": "sales"})
    cache.clear()
    with django_assert_num_queries(3):
        large = client.get(reverse("marketplace:browse"), {"per_page": 48, "sort": "sales"})
    assert len(small.context["page"].object_list) == 3 and len(large.context["page"].object_list) == 23
    assert large.context["page"].object_list[0].licences_sold == 1


def _detail(client, tok):
    resp = client.get(reverse("marketplace:detail", args=[tok.token_id]))
    assert resp.status_code == 200
    return resp.content.decode()


def test_model_page_buttons_fit_the_visitor(client):
    tok = _model("Digits")
    StakeAllocationFactory(task=tok.task, holder=tok.owner, shares=6_000)
    # anonymous: offers and lineage, no buttons
    body = _detail(client, tok)
    assert "Non-exclusive research licence." in body and 'id="lineage"' in body and "<h1>Card</h1>" in body
    assert (
        'id="buy-licence"' not in body and 'id="download"' not in body and "Sign in with your wallet" in body
    )
    assert "60.00 %" in body  # stakeholders table
    # someone signed in: can buy a licence (no NFT listed)
    client.force_login(UserFactory())
    body = _detail(client, tok)
    assert 'id="buy-licence"' in body and 'id="buy-nft"' not in body and 'id="download"' not in body
    # a licensee: download and use, still may buy again
    licensee = UserFactory()
    LicenceFactory(token=tok, buyer=licensee.username)
    client.force_login(licensee)
    body = _detail(client, tok)
    assert 'id="download"' in body and 'id="use-model"' in body and 'id="terms-form"' not in body
    # the owner: sell and licence, no buy buttons
    client.force_login(tok.task.creator)
    body = _detail(client, tok)
    assert 'id="terms-form"' in body and 'id="list-form"' in body and 'id="buy-licence"' not in body
    assert 'id="download"' in body
    assert client.get(reverse("marketplace:detail", args=[999])).status_code == 404


def test_a_licence_holder_is_offered_another_licence_only_if_theirs_expires(client):
    tok = _model("Digits")
    # an expiring licence: the button says it buys another one
    expiring = UserFactory()
    LicenceFactory(token=tok, buyer=expiring.username)
    client.force_login(expiring)
    body = _detail(client, tok)
    assert 'id="buy-licence"' in body and "Buy another licence (" in body
    # a perpetual licence: nothing more to buy
    perpetual = UserFactory()
    LicenceFactory(token=tok, buyer=perpetual.username, expires_at=None)
    client.force_login(perpetual)
    body = _detail(client, tok)
    assert 'id="buy-licence"' not in body and "Your licence is perpetual" in body
    # someone without one: the plain offer
    client.force_login(UserFactory())
    body = _detail(client, tok)
    assert "Buy a licence (" in body and "Buy another licence" not in body


def test_my_models_and_purchases_need_sign_in_and_show_mine(client):
    mine, other = _model("Mine"), _model("Other")
    for name in ("marketplace:mine", "marketplace:purchases"):
        resp = client.get(reverse(name))
        assert resp.status_code == 302 and resp["Location"].startswith(reverse("account_login"))
    buyer = UserFactory()
    LicenceFactory(token=other, buyer=buyer.username, expires_at=None)
    LicenceFactory(token=mine, buyer=buyer.username, expires_at=timezone.now() - dt.timedelta(days=1))
    client.force_login(mine.task.creator)
    body = client.get(reverse("marketplace:mine")).content.decode()
    assert "Mine" in body and "Other" not in body
    client.force_login(buyer)
    body = client.get(reverse("marketplace:purchases")).content.decode()
    assert "never (perpetual)" in body and "expired" in body
    assert body.count("Download</button>") == 1


def test_owner_sets_licence_terms_through_the_views(client, minted, owner, buyer):
    # given: the owner on the model page asks for the transaction
    client.force_login(owner)
    tx_url = reverse("marketplace:tx", args=[minted.token_id, "terms"])
    form = {"price_eth": "0.05", "duration_days": "10", "perpetual": False, "terms": "Research only."}
    resp = client.post(tx_url, form, content_type="application/json")
    assert resp.status_code == 200, resp.json()
    call = resp.json()["calls"][0]
    # when: the wallet sends it and the page posts the hash
    tx_hash = send(call, OWNER_KEY)
    done = client.post(resp.json()["confirm_url"], {"tx_hash": tx_hash}, content_type="application/json")
    # then
    assert done.status_code == 200 and done.json()["message"] == "Licence terms set on chain."
    terms = LicenceTerms.objects.get(token=minted, active=True)
    assert terms.price_wei == Decimal(5 * 10**16) and terms.duration_s == 10 * 86_400
    assert "0.05 ETH" in _detail(client, minted) and "10 days" in _detail(client, minted)
    # refusals in words: another user, a bad form, buying your own model
    client.force_login(buyer)
    refused = client.post(tx_url, form, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "not_owner"
    client.force_login(owner)
    bad = client.post(tx_url, {**form, "duration_days": ""}, content_type="application/json")
    assert bad.status_code == 400 and "perpetual" in bad.json()["error"]
    own = client.post(
        reverse("marketplace:tx", args=[minted.token_id, "buy-licence"]), {}, content_type="application/json"
    )
    assert own.status_code == 409 and own.json()["code"] == "own_model"
    client.logout()
    assert client.post(tx_url, form, content_type="application/json").status_code == 401


def test_wrong_chain_and_funds_refused_before_the_wallet(client, minted, owner, buyer):
    client.force_login(owner)
    call = client.post(
        reverse("marketplace:tx", args=[minted.token_id, "terms"]),
        {"price_eth": "1", "perpetual": True, "terms": "Any use."},
        content_type="application/json",
    ).json()
    client.post(
        call["confirm_url"], {"tx_hash": send(call["calls"][0], OWNER_KEY)}, content_type="application/json"
    )
    client.force_login(buyer)
    url = reverse("marketplace:tx", args=[minted.token_id, "buy-licence"])
    wrong = client.post(url, {"wallet_chain_id": 1}, content_type="application/json")
    assert (
        wrong.status_code == 400
        and wrong.json()["code"] == "wrong_chain"
        and "Switch networks" in wrong.json()["error"]
    )
    poor = client.post(url, {"wallet_balance_wei": "0x10"}, content_type="application/json")
    assert poor.json()["code"] == "insufficient_funds"
    ok = client.post(url, {"wallet_chain_id": 31337}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["calls"][0]["value"] == hex(10**18)
    assert ok.json()["confirm_url"] == "/api/v1/purchases/confirm/"


def test_downloads_page_for_licensee_only(client):
    tok = _model()
    licensee = UserFactory()
    LicenceFactory(token=tok, buyer=licensee.username)
    url = reverse("marketplace:downloads", args=[tok.token_id])
    client.force_login(UserFactory())
    assert client.post(url).status_code == 403
    client.force_login(licensee)
    body = client.post(url).content.decode()
    assert "model.safetensors" in body and "README.md" in body and "/api/v1/downloads/" in body


def test_predict_through_the_page_licensee_yes_others_403(client):
    from tests.training.trained import digits_final_model
    from training.services.exports import final_model_onnx_export

    final = digits_final_model("mlp")
    final_model_onnx_export(final_model=final)
    tok = ModelTokenFactory(task=final.task, owner=final.task.creator.username)
    url = reverse("marketplace:predict", args=[tok.token_id])
    row = ",".join(["0"] * 64)
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    assert client.post(url, {"csv": row}).status_code == 403
    licensee = UserFactory()
    LicenceFactory(token=tok, buyer=licensee.username)
    client.force_login(licensee)
    resp = client.post(url, {"csv": f"{row}\n{row}\n"})
    assert (
        resp.status_code == 200
        and len(resp.context["rows"]) == 2
        and 'id="predictions"' in resp.content.decode()
    )
    bad = client.post(url, {"csv": "1,2,3\n"})
    assert bad.status_code == 400 and 'id="predict-error"' in bad.content.decode()


def test_card_markdown_is_escaped_and_rendered():
    html = card_html(
        "---\nlicense: x\n---\n# T <script>\n\n| a | b |\n|---|---|\n| 1 | `<i>` |\n\n- **b** [l](javascript:x)\n"
    )
    assert "<h1>T &lt;script&gt;</h1>" in html and "<script>" not in html
    assert "<th>a</th>" in html and "<td><code>&lt;i&gt;</code></td>" in html
    assert "<strong>b</strong>" in html and 'href="javascript' not in html and "license" not in html


@pytest.mark.parametrize(
    ("choices", "value"),
    [
        ([("", "Any"), ("mlp", "MLP <b>"), ("cnn", "CNN")], "mlp"),
        ([(12, 12), (24, 24)], 24),
        ([("a", "a")], None),
        ([], None),
        ([("Group", [("x", "X")]), ("y", "Y")], "x"),
    ],
)
def test_quick_select_renders_what_djangos_select_renders(choices, value):
    attrs = {"id": "id_f", "class": "x"}
    quick = QuickSelect(choices=choices).render("f", value, attrs)
    assert quick == forms.Select(choices=choices).render("f", value, attrs)
    assert "&lt;b&gt;" in quick or "<b>" not in str(choices)
