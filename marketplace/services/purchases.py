"""Buying a licence or the NFT: the buyer's wallet sends `Marketplace.buyLicence(tokenId, expectedPrice,
expectedTermsHash)` / `buyNFT(tokenId)` from the browser; the server builds the calldata, refuses early what
cannot succeed (own model, not for sale, wrong chain, not enough funds), and records the purchase ONLY from the
mined receipt and its event (`contracts.wallet_tx.wallet_tx_confirm`). `marketplace.services.sync` records the
same purchase from the index when the page was closed."""

from __future__ import annotations

from django.conf import settings
from eth_utils import to_checksum_address

from contracts import chain, wallet_tx
from marketplace.models import Purchase
from marketplace.selectors import active_licence_terms, active_listing
from marketplace.services.errors import MarketplaceRefused, eth, revert_refusal
from marketplace.services.records import record_purchase_created

GAS_ALLOWANCE_WEI = (
    10**15
)  # what a purchase may cost in gas on top of the price (0.001 ETH), for the early check


SAME_BLOCK_LOSER = (
    "Your transaction was reverted: another transaction in the same block was mined first and changed the offer "
    "(another buyer got the NFT, or the licence price or terms changed). Nothing was bought; only the gas was "
    "spent. Reload the page to see the current offers."
)


def _hexdata(data) -> str:
    return "0x" + bytes(data).hex() if isinstance(data, bytes | bytearray) else str(data)


def _wallet_call(function: str, args: list, value: int) -> dict:
    tx = chain.build_call("Marketplace", function, args, value=value)
    return {"to": tx["to"], "data": _hexdata(tx["data"]), "value": hex(value), "chainId": settings.CHAIN_ID}


def _precheck(*, user, token, price_wei: int, wallet_chain_id: int | None, wallet_balance_wei: int | None):
    """Refusals before the wallet is even asked: own model, wrong chain, not enough funds (the page passes what
    the wallet reports; the chain enforces all of it anyway)."""
    if to_checksum_address(user.username) == to_checksum_address(token.owner):
        raise MarketplaceRefused("own_model", "You own this model: you cannot buy it or a licence of it.")
    if wallet_chain_id is not None and int(wallet_chain_id) != settings.CHAIN_ID:
        raise MarketplaceRefused(
            "wrong_chain",
            f"Your wallet is on chain {wallet_chain_id}; the marketplace is on chain {settings.CHAIN_ID}. "
            "Switch networks in your wallet and try again.",
        )
    if wallet_balance_wei is not None and int(wallet_balance_wei) < price_wei + GAS_ALLOWANCE_WEI:
        raise MarketplaceRefused(
            "insufficient_funds",
            f"Your wallet holds {eth(wallet_balance_wei)}; this costs {eth(price_wei)} plus gas.",
        )


def licence_buy_call(*, token, user, wallet_chain_id=None, wallet_balance_wei=None) -> dict:
    """The buyLicence transaction for the terms in force: {to, data, value (hex wei), chainId, price_wei,
    terms_hash}. Raises MarketplaceRefused (not_for_sale, own_model, wrong_chain, insufficient_funds)."""
    terms = active_licence_terms(token=token)
    if terms is None:
        raise MarketplaceRefused("not_for_sale", "Licences of this model are not for sale.")
    price = int(terms.price_wei)
    _precheck(
        user=user,
        token=token,
        price_wei=price,
        wallet_chain_id=wallet_chain_id,
        wallet_balance_wei=wallet_balance_wei,
    )
    call = _wallet_call("buyLicence", [token.token_id, price, terms.terms_hash], price)
    return {**call, "price_wei": str(price), "terms_hash": terms.terms_hash}


def nft_buy_call(*, token, user, wallet_chain_id=None, wallet_balance_wei=None) -> dict:
    """The buyNFT transaction for the active listing: {to, data, value, chainId, price_wei}. Raises
    MarketplaceRefused (not_listed, own_model, wrong_chain, insufficient_funds)."""
    listing = active_listing(token=token)
    if listing is None:
        raise MarketplaceRefused("not_listed", "This NFT is not listed for sale.")
    price = int(listing.price_wei)
    _precheck(
        user=user,
        token=token,
        price_wei=price,
        wallet_chain_id=wallet_chain_id,
        wallet_balance_wei=wallet_balance_wei,
    )
    return {**_wallet_call("buyNFT", [token.token_id], price), "price_wei": str(price)}


def _confirmed_purchase(tx_hash: str, user, wait_seconds: float) -> wallet_tx.ConfirmedTx:
    for i, event_name in enumerate(("LicencePurchased", "NFTSold")):
        try:
            return wallet_tx.wallet_tx_confirm(
                tx_hash=tx_hash,
                sender=user.username,
                contract_name="Marketplace",
                event_name=event_name,
                expected_args={"buyer": user.username},
                action="confirm this purchase",
                who="your wallet",
                wait_seconds=wait_seconds if i == 0 else 0.0,
            )
        except wallet_tx.TxEventMissing:
            continue
        except wallet_tx.TxReverted as exc:
            revert = exc.revert
            if not revert.error_name:  # a same-block loser replays cleanly at the parent block
                raise MarketplaceRefused("reverted", SAME_BLOCK_LOSER) from exc
            raise revert_refusal(revert.error_name, revert.error_args, revert.reason) from exc
        except wallet_tx.WalletTxError as exc:
            raise MarketplaceRefused(exc.code, str(exc)) from exc
    raise MarketplaceRefused(
        "not_a_purchase", "This transaction bought nothing: it emitted no LicencePurchased or NFTSold event."
    )


def purchase_confirm(*, tx_hash: str, user, wait_seconds: float = 0.0) -> tuple[Purchase, bool]:
    """Record the licence or NFT bought by `user`'s wallet in `tx_hash`: (purchase, created now).

    Verified from the receipt (mined, status 1, sent by the user's wallet to the Marketplace, with a
    LicencePurchased/NFTSold event whose buyer is that wallet). Idempotent by tx hash: posting the same hash
    again (or the indexer getting there first) returns the existing record. Raises MarketplaceRefused with the
    reason in words (a revert's decoded custom error: wrong amount, listing gone, terms changed, own model)."""
    tx_hash = (tx_hash or "").strip().lower()
    existing = Purchase.objects.filter(tx_hash=tx_hash).select_related("token").first()
    if existing is not None:
        if existing.buyer != to_checksum_address(user.username):
            raise MarketplaceRefused("wrong_sender", "This purchase was made by another wallet.")
        return existing, False
    confirmed = _confirmed_purchase(tx_hash, user, wait_seconds)
    return record_purchase_created(event=confirmed.event, source="page", user=user, fee_wei=confirmed.fee_wei)
