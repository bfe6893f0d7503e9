from __future__ import annotations

import pytest
from eth_utils import keccak

from tests.contracts.solidity.helpers import ETH, decode_error, reverts

ROYALTY_BPS = 1000  # 10 %


@pytest.fixture
def model(env, accounts):
    """Token 1 owned by accounts[1] with shares split between accounts[2] (60 %) and accounts[3] (40 %)."""
    token_id = env.mint_model(accounts[1], keccak(text="m1"), royalty_bps=ROYALTY_BPS)
    env.give_shares(token_id, [accounts[2], accounts[3]], [6000, 4000])
    return token_id


def approve(env, owner, token_id):
    env.send(env.nft.functions.approve(env.market.address, token_id), owner)


def test_list_requires_owner_approval_and_price(env, accounts, model):
    mk = env.market.functions
    seller = accounts[1]
    with reverts("MarketplaceNotApproved", model):
        mk.listNFT(model, ETH).transact({"from": seller})
    approve(env, seller, model)
    with reverts("MarketplaceNotTokenOwner", model, accounts[4]):
        mk.listNFT(model, ETH).transact({"from": accounts[4]})
    with reverts("MarketplaceZeroPrice"):
        mk.listNFT(model, 0).transact({"from": seller})
    with reverts("MarketplacePriceTooLarge", 2**96):
        mk.listNFT(model, 2**96).transact({"from": seller})
    receipt = env.send(mk.listNFT(model, ETH), seller)
    assert dict(env.event(env.market, "NFTListed", receipt)[0]["args"]) == {
        "tokenId": model,
        "seller": seller,
        "price": ETH,
    }
    assert mk.listingOf(model).call() == (seller, ETH)
    # approval for all also works
    env.send(env.nft.functions.approve("0x" + "00" * 20, model), seller)
    env.send(env.nft.functions.setApprovalForAll(env.market.address, True), seller)
    env.send(mk.listNFT(model, 2 * ETH), seller)
    assert mk.listingOf(model).call() == (seller, 2 * ETH)


def test_cancel_listing(env, accounts, model):
    mk = env.market.functions
    with reverts("MarketplaceNotListed", model):
        mk.cancelNFTListing(model).transact({"from": accounts[1]})
    approve(env, accounts[1], model)
    env.send(mk.listNFT(model, ETH), accounts[1])
    with reverts("MarketplaceNotSeller", model, accounts[4]):
        mk.cancelNFTListing(model).transact({"from": accounts[4]})
    receipt = env.send(mk.cancelNFTListing(model), accounts[1])
    assert dict(env.event(env.market, "NFTListingCancelled", receipt)[0]["args"]) == {
        "tokenId": model,
        "seller": accounts[1],
    }
    with reverts("MarketplaceNotListed", model):
        mk.buyNFT(model).transact({"from": accounts[4], "value": ETH})


def test_buy_nft_pays_royalty_to_pool_and_credits_seller(env, accounts, model):
    mk = env.market.functions
    seller, buyer = accounts[1], accounts[4]
    approve(env, seller, model)
    env.send(mk.listNFT(model, 2 * ETH), seller)
    with reverts("MarketplaceWrongPayment", 2 * ETH, ETH):
        mk.buyNFT(model).transact({"from": buyer, "value": ETH})
    with reverts("MarketplaceWrongPayment", 2 * ETH, 3 * ETH):
        mk.buyNFT(model).transact({"from": buyer, "value": 3 * ETH})
    receipt = env.send(mk.buyNFT(model), buyer, value=2 * ETH)
    royalty = 2 * ETH * ROYALTY_BPS // 10_000
    (sold,) = env.event(env.market, "NFTSold", receipt)
    assert dict(sold["args"]) == {
        "tokenId": model,
        "seller": seller,
        "buyer": buyer,
        "price": 2 * ETH,
        "royalty": royalty,
    }
    (dep,) = env.event(env.stake, "RevenueDeposited", receipt)
    assert dict(dep["args"]) == {"id": model, "from": env.market.address, "amount": royalty}
    assert env.nft.functions.ownerOf(model).call() == buyer
    assert mk.listingOf(model).call()[0] == "0x" + "00" * 20
    assert mk.creditOf(seller).call() == 2 * ETH - royalty
    assert env.stake.functions.claimable(model, accounts[2]).call() == royalty * 6 // 10
    assert env.stake.functions.claimable(model, accounts[3]).call() == royalty * 4 // 10

    before = env.balance(seller)
    receipt = env.send(mk.withdraw(), seller)
    assert env.balance(seller) - before + env.fee(receipt) == 2 * ETH - royalty
    assert dict(env.event(env.market, "Withdrawn", receipt)[0]["args"]) == {
        "account": seller,
        "amount": 2 * ETH - royalty,
    }
    assert env.balance(env.market.address) == 0
    with reverts("MarketplaceNothingToWithdraw", seller):
        mk.withdraw().transact({"from": seller})


def test_stale_listing_cannot_be_bought(env, accounts, model):
    mk = env.market.functions
    seller = accounts[1]
    env.send(env.nft.functions.setApprovalForAll(env.market.address, True), seller)
    env.send(mk.listNFT(model, ETH), seller)
    env.send(env.nft.functions.transferFrom(seller, accounts[5], model), seller)
    with reverts("MarketplaceListingStale", model):
        mk.buyNFT(model).transact({"from": accounts[4], "value": ETH})


def test_royalty_to_non_pool_receiver_is_credited(env, accounts):
    token_id = 1
    env.send(env.nft.functions.mint(accounts[1], 1, keccak(text="m"), accounts[8], 500))
    approve(env, accounts[1], token_id)
    env.send(env.market.functions.listNFT(token_id, ETH), accounts[1])
    env.send(env.market.functions.buyNFT(token_id), accounts[4], value=ETH)
    assert env.market.functions.creditOf(accounts[8]).call() == ETH // 20
    assert env.market.functions.creditOf(accounts[1]).call() == ETH - ETH // 20


TERMS = keccak(text="Non-exclusive research licence, 30 days.")
DAY = 86_400


def test_licences(env, accounts, model):
    mk = env.market.functions
    owner, buyer = accounts[1], accounts[6]
    price = ETH // 10
    with reverts("MarketplaceLicenceNotForSale", model):
        mk.buyLicence(model, ETH, TERMS).transact({"from": buyer, "value": ETH})
    with reverts("MarketplaceNotTokenOwner", model, buyer):
        mk.setLicenceTerms(model, ETH, 0, TERMS).transact({"from": buyer})
    with reverts("MarketplaceZeroTermsHash"):
        mk.setLicenceTerms(model, ETH, 0, b"\x00" * 32).transact({"from": owner})
    receipt = env.send(mk.setLicenceTerms(model, price, 30 * DAY, TERMS), owner)
    assert dict(env.event(env.market, "LicenceTermsSet", receipt)[0]["args"]) == {
        "tokenId": model,
        "owner": owner,
        "price": price,
        "duration": 30 * DAY,
        "termsHash": TERMS,
    }
    assert mk.licenceTermsOf(model).call() == (owner, price, 30 * DAY, TERMS)
    with reverts("MarketplaceWrongPayment", price, ETH):
        mk.buyLicence(model, price, TERMS).transact({"from": buyer, "value": ETH})
    for expected_id in (1, 2):
        receipt = env.send(mk.buyLicence(model, price, TERMS), buyer, value=price)
        now = env.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        (ev,) = env.event(env.market, "LicencePurchased", receipt)
        assert dict(ev["args"]) == {
            "tokenId": model,
            "buyer": buyer,
            "price": price,
            "licenceId": expected_id,
            "expiresAt": now + 30 * DAY,
            "termsHash": TERMS,
        }
    assert mk.licenceOf(2).call() == (model, buyer, price, now + 30 * DAY)
    assert mk.licenceCount().call() == 2
    assert env.stake.functions.totalDeposited(model).call() == 2 * price
    assert env.balance(env.market.address) == 0
    # the terms lapse when the NFT changes hands
    env.send(env.nft.functions.transferFrom(owner, accounts[7], model), owner)
    assert mk.licenceTermsOf(model).call() == ("0x" + "00" * 20, 0, 0, b"\x00" * 32)
    with reverts("MarketplaceLicenceNotForSale", model):
        mk.buyLicence(model, price, TERMS).transact({"from": buyer, "value": price})
    # price 0 withdraws the offer
    env.send(mk.setLicenceTerms(model, ETH, 0, TERMS), accounts[7])
    env.send(mk.setLicenceTerms(model, 0, 0, b"\x00" * 32), accounts[7])
    with reverts("MarketplaceLicenceNotForSale", model):
        mk.buyLicence(model, 0, b"\x00" * 32).transact({"from": buyer, "value": 0})


def test_perpetual_licence_has_no_expiry(env, accounts, model):
    mk = env.market.functions
    env.send(mk.setLicenceTerms(model, ETH, 0, TERMS), accounts[1])
    receipt = env.send(mk.buyLicence(model, ETH, TERMS), accounts[6], value=ETH)
    assert env.event(env.market, "LicencePurchased", receipt)[0]["args"]["expiresAt"] == 0
    assert mk.licenceOf(1).call()[3] == 0


def test_licence_terms_changed_after_page_load_revert(env, accounts, model):
    mk = env.market.functions
    owner, buyer = accounts[1], accounts[6]
    env.send(mk.setLicenceTerms(model, ETH, 0, TERMS), owner)
    # the owner raises the price and changes the text before the buyer's transaction lands
    other = keccak(text="Exclusive licence.")
    env.send(mk.setLicenceTerms(model, 2 * ETH, 0, other), owner)
    with reverts("MarketplaceLicenceTermsChanged", model, ETH, 2 * ETH, TERMS, other):
        mk.buyLicence(model, ETH, TERMS).transact({"from": buyer, "value": ETH})
    with reverts("MarketplaceLicenceTermsChanged", model, 2 * ETH, 2 * ETH, TERMS, other):
        mk.buyLicence(model, 2 * ETH, TERMS).transact({"from": buyer, "value": 2 * ETH})
    env.send(mk.buyLicence(model, 2 * ETH, other), buyer, value=2 * ETH)


def test_buying_ones_own_model_is_refused(env, accounts, model):
    mk = env.market.functions
    owner = accounts[1]
    env.send(mk.setLicenceTerms(model, ETH, 0, TERMS), owner)
    with reverts("MarketplaceOwnModel", model, owner):
        mk.buyLicence(model, ETH, TERMS).transact({"from": owner, "value": ETH})
    approve(env, owner, model)
    env.send(mk.listNFT(model, ETH), owner)
    with reverts("MarketplaceOwnModel", model, owner):
        mk.buyNFT(model).transact({"from": owner, "value": ETH})


def _revert_data(env, tx_hash) -> str:
    """The revert output of a mined transaction (anvil's call tracer), so a same-block loser is decoded too."""
    trace = env.w3.provider.make_request("debug_traceTransaction", [tx_hash.hex(), {"tracer": "callTracer"}])
    return trace["result"]["output"]


def test_racing_buyers_exactly_one_wins(env, accounts, model):
    mk = env.market.functions
    seller, first, second = accounts[1], accounts[4], accounts[5]
    approve(env, seller, model)
    env.send(mk.listNFT(model, ETH), seller)
    env.w3.provider.make_request("evm_setAutomine", [False])
    try:
        fee = {"gas": 300_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "value": ETH}
        h1 = mk.buyNFT(model).transact({"from": first, **fee})
        h2 = mk.buyNFT(model).transact({"from": second, **fee})
        env.w3.provider.make_request("evm_mine", [])
    finally:
        env.w3.provider.make_request("evm_setAutomine", [True])
    r1, r2 = (env.w3.eth.wait_for_transaction_receipt(h) for h in (h1, h2))
    assert r1["blockNumber"] == r2["blockNumber"]  # the same block: a real race
    assert (r1["status"], r2["status"]) == (1, 0)
    assert env.nft.functions.ownerOf(model).call() == first
    assert decode_error(_revert_data(env, h2)) == ("MarketplaceNotListed", (model,))
    assert env.balance(second) > 0 and env.balance(env.market.address) == mk.creditOf(seller).call()


def test_licence_requires_opened_stakes(env, accounts):
    token_id = env.mint_model(accounts[1], keccak(text="no-shares"))
    env.send(env.market.functions.setLicenceTerms(token_id, ETH, 0, TERMS), accounts[1])
    with reverts("StakeTokenNotOpened", token_id):
        env.market.functions.buyLicence(token_id, ETH, TERMS).transact({"from": accounts[2], "value": ETH})
