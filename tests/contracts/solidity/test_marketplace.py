from __future__ import annotations

import pytest
from eth_utils import keccak

from tests.contracts.solidity.helpers import ETH, reverts

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


def test_licences(env, accounts, model):
    mk = env.market.functions
    owner, buyer = accounts[1], accounts[6]
    with reverts("MarketplaceLicenceNotForSale", model):
        mk.buyLicence(model).transact({"from": buyer, "value": ETH})
    with reverts("MarketplaceNotTokenOwner", model, buyer):
        mk.setLicencePrice(model, ETH).transact({"from": buyer})
    receipt = env.send(mk.setLicencePrice(model, ETH // 10), owner)
    assert dict(env.event(env.market, "LicencePriceSet", receipt)[0]["args"]) == {
        "tokenId": model,
        "owner": owner,
        "price": ETH // 10,
    }
    assert mk.licencePriceOf(model).call() == ETH // 10
    with reverts("MarketplaceWrongPayment", ETH // 10, ETH):
        mk.buyLicence(model).transact({"from": buyer, "value": ETH})
    for expected_id in (1, 2):
        receipt = env.send(mk.buyLicence(model), buyer, value=ETH // 10)
        (ev,) = env.event(env.market, "LicencePurchased", receipt)
        assert dict(ev["args"]) == {
            "tokenId": model,
            "buyer": buyer,
            "price": ETH // 10,
            "licenceId": expected_id,
        }
    assert mk.licenceOf(2).call() == (model, buyer, ETH // 10)
    assert mk.licenceCount().call() == 2
    assert env.stake.functions.totalDeposited(model).call() == 2 * ETH // 10
    assert env.balance(env.market.address) == 0
    # the price lapses when the NFT changes hands
    env.send(env.nft.functions.transferFrom(owner, accounts[7], model), owner)
    assert mk.licencePriceOf(model).call() == 0
    with reverts("MarketplaceLicenceNotForSale", model):
        mk.buyLicence(model).transact({"from": buyer, "value": ETH // 10})
    # price 0 withdraws the offer
    env.send(mk.setLicencePrice(model, ETH), accounts[7])
    env.send(mk.setLicencePrice(model, 0), accounts[7])
    with reverts("MarketplaceLicenceNotForSale", model):
        mk.buyLicence(model).transact({"from": buyer, "value": 0})


def test_licence_requires_opened_stakes(env, accounts):
    token_id = env.mint_model(accounts[1], keccak(text="no-shares"))
    env.send(env.market.functions.setLicencePrice(token_id, ETH), accounts[1])
    with reverts("StakeTokenNotOpened", token_id):
        env.market.functions.buyLicence(token_id).transact({"from": accounts[2], "value": ETH})
