"""Marketplace services on the fake chain: owner actions and purchases confirmed from receipts and events, the
refusals in words, reconciliation from the index, and idempotent confirmation."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest
from django.db import connection
from django.utils import timezone

from marketplace import selectors, services
from marketplace.models import Licence, NFTSale, Purchase
from tests.marketplace.conftest import BUYER_KEY, OTHER_KEY, OWNER_KEY, send, sync, user_of

PRICE = 10**17
TERMS = "Non-exclusive research licence, 30 days, no redistribution of the weights."


def set_terms(token, owner, price=PRICE, duration=30 * 86_400, text=TERMS):
    call = services.licence_terms_call(
        token=token, user=owner, price_wei=price, duration_s=duration, terms=text
    )
    return services.licence_terms_confirm(token=token, user=owner, tx_hash=send(call, OWNER_KEY))


def list_nft(token, owner, price=PRICE * 10):
    approve, listing = services.listing_calls(token=token, user=owner, price_wei=price)
    send(approve, OWNER_KEY)
    return services.listing_confirm(token=token, user=owner, tx_hash=send(listing, OWNER_KEY))


def test_licence_bought_and_granted(minted, owner, buyer, fake_chain):
    # given: the owner set terms (confirmed from the LicenceTermsSet event)
    terms = set_terms(minted, owner)
    assert terms.active and terms.terms_hash == services.terms_hash_of(TERMS)
    assert not selectors.has_access(token=minted, user=buyer)
    # when: the buyer's wallet sends the call the server built, and the page posts the hash
    call = services.licence_buy_call(
        token=minted, user=buyer, wallet_chain_id=31337, wallet_balance_wei=10**18
    )
    tx_hash = send(call, BUYER_KEY)
    purchase, created = services.purchase_confirm(tx_hash=tx_hash, user=buyer)
    # then: a licence with its on-chain expiry, the price in the stake pool, access granted
    licence = Licence.objects.get()
    assert created and purchase.kind == "licence" and purchase.source == "page"
    assert licence.buyer == buyer.username and int(licence.price_wei) == PRICE and licence.licence_id == 1
    expected = timezone.now() + dt.timedelta(days=30)
    assert abs((licence.expires_at - expected).total_seconds()) < 60
    assert fake_chain.stakes[1]["deposited"] == PRICE
    assert selectors.has_access(token=minted, user=buyer)
    # and: posting it again (or the indexer seeing it) creates nothing
    again, created = services.purchase_confirm(tx_hash=tx_hash, user=buyer)
    assert again == purchase and not created
    sync()
    assert Purchase.objects.count() == Licence.objects.count() == 1


def test_refusals_in_words(minted, owner, buyer):
    set_terms(minted, owner)
    with pytest.raises(services.MarketplaceRefused, match="You own this model") as own:
        services.licence_buy_call(token=minted, user=owner)
    assert own.value.code == "own_model"
    with pytest.raises(services.MarketplaceRefused, match="chain 1; the marketplace is on chain 31337"):
        services.licence_buy_call(token=minted, user=buyer, wallet_chain_id=1)
    with pytest.raises(services.MarketplaceRefused, match="holds 0.01 ETH") as poor:
        services.licence_buy_call(token=minted, user=buyer, wallet_balance_wei=10**16)
    assert poor.value.code == "insufficient_funds"
    # a wallet that sends the wrong amount: reverted, decoded into words
    call = services.licence_buy_call(token=minted, user=buyer)
    tx_hash = send(call, BUYER_KEY, value=hex(PRICE // 2))
    with pytest.raises(
        services.MarketplaceRefused, match="amount sent was 0.05 ETH .* price is 0.1 ETH"
    ) as wrong:
        services.purchase_confirm(tx_hash=tx_hash, user=buyer)
    assert wrong.value.code == "wrong_amount"
    # the owner changes the terms between page load and purchase
    stale_call = services.licence_buy_call(token=minted, user=buyer)
    set_terms(minted, owner, price=2 * PRICE)
    tx_hash = send(stale_call, BUYER_KEY)
    with pytest.raises(services.MarketplaceRefused, match="changed after you loaded the page") as changed:
        services.purchase_confirm(tx_hash=tx_hash, user=buyer)
    assert changed.value.code == "terms_changed"
    # someone else's purchase cannot be claimed
    call = services.licence_buy_call(token=minted, user=buyer)
    tx_hash = send(call, BUYER_KEY)
    with pytest.raises(services.MarketplaceRefused, match="not by your wallet") as sender:
        services.purchase_confirm(tx_hash=tx_hash, user=user_of(OTHER_KEY))
    assert sender.value.code == "wrong_sender"
    assert not Licence.objects.exists()


def test_nft_sold_to_one_of_two_buyers(minted, owner, buyer, fake_chain):
    listing = list_nft(minted, owner)
    assert listing.active and selectors.active_listing(token=minted) == listing
    other = user_of(OTHER_KEY)
    first_call = services.nft_buy_call(token=minted, user=buyer)
    second_call = services.nft_buy_call(token=minted, user=other)
    purchase, _ = services.purchase_confirm(tx_hash=send(first_call, BUYER_KEY), user=buyer)
    minted.refresh_from_db()
    sale = NFTSale.objects.get()
    assert purchase.kind == "nft" and minted.owner == buyer.username
    assert int(sale.royalty_wei) == PRICE and fake_chain.stakes[1]["deposited"] == PRICE  # 10 % of 1 ETH
    assert not minted.listings.filter(active=True).exists()
    # the loser: refused before sending, and in words if its wallet sent anyway
    with pytest.raises(services.MarketplaceRefused) as gone:
        services.nft_buy_call(token=minted, user=other)
    assert gone.value.code == "not_listed"
    with pytest.raises(services.MarketplaceRefused, match="no longer listed"):
        services.purchase_confirm(tx_hash=send(second_call, OTHER_KEY), user=other)
    # the new owner has access, the old one lost it
    assert selectors.has_access(token=minted, user=buyer) and not selectors.has_access(
        token=minted, user=owner
    )


def test_a_same_block_loser_is_told_what_happened_in_words(minted, owner, buyer, fake_chain):
    # given: a purchase that reverts without a reason a replay at the parent block can find (its block's earlier
    # transaction took the offer)
    list_nft(minted, owner)
    call = services.nft_buy_call(token=minted, user=buyer)
    fake_chain.revert_next(error_name="", reason="execution reverted")
    tx_hash = send(call, BUYER_KEY)
    # when / then
    with pytest.raises(services.MarketplaceRefused, match="another transaction in the same block") as lost:
        services.purchase_confirm(tx_hash=tx_hash, user=buyer)
    assert lost.value.code == "reverted" and "Nothing was bought" in str(lost.value)
    assert not NFTSale.objects.exists()


def test_unlist_and_owner_only(minted, owner, buyer):
    list_nft(minted, owner)
    with pytest.raises(services.MarketplaceRefused) as not_owner:
        services.unlist_call(token=minted, user=buyer)
    assert not_owner.value.code == "not_owner"
    call = services.unlist_call(token=minted, user=owner)
    assert services.unlist_confirm(token=minted, user=owner, tx_hash=send(call, OWNER_KEY)) == 1
    assert selectors.active_listing(token=minted) is None


def test_a_purchase_whose_page_was_closed_lands_from_the_index(minted, owner, buyer):
    set_terms(minted, owner)
    tx_hash = send(services.licence_buy_call(token=minted, user=buyer), BUYER_KEY)
    assert not Licence.objects.exists()  # the page never posted the hash
    counts = sync()
    assert counts == {"LicenceTermsSet": 1, "LicencePurchased": 1}  # the terms event re-applied: harmless
    purchase = Purchase.objects.get()
    assert purchase.source == "index" and purchase.user == buyer and purchase.tx_hash == tx_hash.lower()
    _, created = services.purchase_confirm(tx_hash=tx_hash, user=buyer)
    assert not created and Licence.objects.count() == 1


def _concurrent_confirms(tx_hash: str, user, n: int) -> list:
    results, barrier = [], threading.Barrier(n)
    # PostgreSQL's max_connections is 100 (shared with the test's own connection and other clients): the
    # threads start together and race, at most 50 of them holding a connection at a time.
    connections_free = threading.BoundedSemaphore(50)

    def confirm():
        barrier.wait()
        with connections_free:
            try:
                results.append(services.purchase_confirm(tx_hash=tx_hash, user=user)[1])
            finally:
                connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_a_confirmation_posted_many_times_creates_one_record(minted, owner, buyer):
    set_terms(minted, owner)
    tx_hash = send(services.licence_buy_call(token=minted, user=buyer), BUYER_KEY)
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        created = _concurrent_confirms(tx_hash, buyer, 100)  # 100 at once on PostgreSQL
        assert len(created) == 100
    else:  # SQLite serialises writers: the same 100 posts one after another
        created = [services.purchase_confirm(tx_hash=tx_hash, user=buyer)[1] for _ in range(100)]
    assert created.count(True) == 1
    assert Purchase.objects.count() == Licence.objects.count() == 1


def test_a_transfer_outside_the_marketplace_moves_access_and_ends_offers(minted, owner, buyer):
    from contracts import chain

    set_terms(minted, owner)
    list_nft(minted, owner)
    call = chain.build_call("ModelNFT", "transferFrom", [owner.username, buyer.username, 1])
    send({"to": call["to"], "data": call["data"]}, OWNER_KEY)
    sync()
    minted.refresh_from_db()
    assert minted.owner == buyer.username and selectors.has_access(token=minted, user=buyer)
    assert not selectors.has_access(token=minted, user=owner)
    assert (
        selectors.active_listing(token=minted) is None
        and selectors.active_licence_terms(token=minted) is None
    )
