"""The list columns of `ModelToken` (`marketplace.token_columns`) follow every recorded fact: from the page's
confirmations and from the indexer's sync on the fake chain, and after random sequences of record calls they equal
what the list's former per-row subqueries computed (here in Python, from the rows)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.conf import settings
from eth_utils import keccak, to_checksum_address

from contracts import chain
from marketplace import services
from marketplace.models import ModelToken
from marketplace.services import records
from tests.marketplace.conftest import BUYER_KEY, OWNER_KEY, send, sync
from tests.marketplace.factories import ModelTokenFactory
from tests.marketplace.test_services import PRICE, list_nft, set_terms
from tests.tasks.factories import TaskFactory
from tests.training.factories import FinalModelFactory, RoundFactory

COLUMNS = ("licence_price_wei", "licence_duration_s", "licence_terms_hash", "nft_price_wei")
COUNTS = ("licences_sold", "sales_count")


def columns(token: ModelToken) -> dict:
    row = ModelToken.objects.values(*COLUMNS, *COUNTS).get(pk=token.pk)
    return {k: (int(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def expected(token: ModelToken) -> dict:
    """The former subqueries' values, from the rows: terms in force (active, set by the owner, price > 0) and the
    owner's active listing, newest first; the counts of licences and NFT sales."""
    token.refresh_from_db()

    def newest(rows):
        return max(rows, key=lambda r: (r.updated_at, r.pk), default=None)

    terms = newest(
        [t for t in token.licence_terms.all() if t.active and t.set_by == token.owner and t.price_wei]
    )
    listing = newest([x for x in token.listings.all() if x.active and x.seller == token.owner])
    return {
        "licence_price_wei": None if terms is None else int(terms.price_wei),
        "licence_duration_s": None if terms is None else terms.duration_s,
        "licence_terms_hash": None if terms is None else terms.terms_hash,
        "nft_price_wei": None if listing is None else int(listing.price_wei),
        "licences_sold": token.licences.count(),
        "sales_count": token.sales.count(),
    }


def test_page_confirmations_and_the_indexer_keep_the_columns(minted, owner, buyer):
    assert columns(minted) == expected(minted) == dict.fromkeys(COLUMNS) | dict.fromkeys(COUNTS, 0)
    # the page confirms terms and a listing
    terms = set_terms(minted, owner)
    list_nft(minted, owner, price=3 * PRICE)
    assert columns(minted) == {
        "licence_price_wei": PRICE,
        "licence_duration_s": 30 * 86_400,
        "licence_terms_hash": terms.terms_hash,
        "nft_price_wei": 3 * PRICE,
        "licences_sold": 0,
        "sales_count": 0,
    }
    # a licence bought whose page was closed: the indexer's sync records it
    send(services.licence_buy_call(token=minted, user=buyer), BUYER_KEY)
    sync()
    assert columns(minted)["licences_sold"] == 1
    # new terms at price 0 (licensing off) and the listing cancelled, both confirmed by the page: null
    set_terms(minted, owner, price=0, text="")
    call = services.unlist_call(token=minted, user=owner)
    services.unlist_confirm(token=minted, user=owner, tx_hash=send(call, OWNER_KEY))
    assert (
        columns(minted)
        == expected(minted)
        == {
            **dict.fromkeys(COLUMNS),
            "licences_sold": 1,
            "sales_count": 0,
        }
    )


def test_a_sale_and_a_transfer_seen_by_the_indexer_end_the_previous_owners_offers(minted, owner, buyer):
    set_terms(minted, owner)
    list_nft(minted, owner)
    # the NFT bought, the page never posting the hash: the sync records the sale and the new owner
    send(services.nft_buy_call(token=minted, user=buyer), BUYER_KEY)
    sync()
    assert (
        columns(minted)
        == expected(minted)
        == {**dict.fromkeys(COLUMNS), "licences_sold": 0, "sales_count": 1}
    )
    # the new owner lists it and gives it back outside the marketplace: the listing lapses with the transfer
    approve, listing = services.listing_calls(token=minted, user=buyer, price_wei=PRICE)
    send(approve, BUYER_KEY)
    send(listing, BUYER_KEY)
    sync()
    assert columns(minted)["nft_price_wei"] == PRICE
    call = chain.build_call("ModelNFT", "transferFrom", [buyer.username, owner.username, 1])
    send({"to": call["to"], "data": call["data"]}, BUYER_KEY)
    sync()
    assert columns(minted) == expected(minted) and columns(minted)["nft_price_wei"] is None


WALLETS = [to_checksum_address(f"0x{0xCAFE0000 + i:040x}") for i in range(3)]


class _Story:
    """Random record calls on one token, as decoded events (`records` takes them from receipts or the index)."""

    def __init__(self, rng: random.Random, token_id: int):
        self.rng, self.token_id, self.block, self.n = rng, token_id, 1, 0

    def event(self, name: str, **args) -> dict:
        self.n, self.block = self.n + 1, self.block + self.rng.choice((0, 1))
        tx = "0x" + keccak(text=f"{self.token_id}-{self.n}").hex()
        return {
            "event": name,
            "args": {"tokenId": self.token_id, **args},
            "tx_hash": tx,
            "block_number": self.block,
        }

    def step(self) -> None:
        rng, who = self.rng, self.rng.choice(WALLETS)
        price = rng.choice((0, 10**15, 10**17, 2 * 10**18))
        kind = rng.choice(("transfer", "terms", "listing", "unlisting", "licence", "sale"))
        if kind == "transfer":
            records.record_transfer(event=self.event("Transfer", to=who))
        elif kind == "terms":
            text = rng.choice(("a", "b"))
            digest = "0x" + keccak(text=text).hex()
            records.record_terms(
                event=self.event(
                    "LicenceTermsSet",
                    owner=who,
                    price=price,
                    duration=rng.choice((0, 86_400)),
                    termsHash=digest,
                ),
                terms_text=text,
            )
        elif kind == "listing":
            records.record_listing(event=self.event("NFTListed", seller=who, price=price))
        elif kind == "unlisting":
            records.record_unlisting(event=self.event("NFTListingCancelled"))
        elif kind == "licence":
            args = {
                "buyer": who,
                "price": price,
                "licenceId": self.n,
                "termsHash": "0x" + "11" * 32,
                "expiresAt": 0,
            }
            records.record_purchase(event=self.event("LicencePurchased", **args), source="index")
        else:
            args = {"buyer": who, "seller": WALLETS[0], "price": price, "royalty": price // 20}
            records.record_purchase(event=self.event("NFTSold", **args), source="index")


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(6))
def test_after_random_record_calls_the_columns_equal_the_subqueries(seed):
    rng = random.Random(seed)
    tokens = []
    for token_id in (101, 102):
        TaskFactory(status="completed", chain_id=settings.CHAIN_ID, chain_task_id=token_id)
        story = _Story(rng, token_id)
        tokens.append((records.record_transfer(event=story.event("Transfer", to=WALLETS[0])), story))
    for _ in range(40):
        token, story = rng.choice(tokens)
        story.step()
        assert columns(token) == expected(token)


@pytest.mark.django_db
def test_the_accuracy_column_follows_the_final_model_saved_before_or_after_the_mint():
    # saved after the token exists (as the tests' factories do)
    token = ModelTokenFactory()
    assert ModelToken.objects.get(pk=token.pk).accuracy is None
    FinalModelFactory(
        task=token.task, source_round=RoundFactory(task=token.task, run__task=token.task, accuracy=0.9)
    )
    assert ModelToken.objects.get(pk=token.pk).accuracy == pytest.approx(0.9)
    # saved before the mint: the Transfer that creates the token reads it
    task = TaskFactory(status="completed", chain_id=settings.CHAIN_ID, chain_task_id=201)
    FinalModelFactory(task=task, source_round=RoundFactory(task=task, run__task=task, accuracy=0.7))
    minted = records.record_transfer(event=_Story(random.Random(0), 201).event("Transfer", to=WALLETS[1]))
    assert ModelToken.objects.get(pk=minted.pk).accuracy == pytest.approx(0.7)
