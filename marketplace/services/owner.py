"""The NFT owner's marketplace actions, each a wallet transaction the owner's browser sends: set licence terms,
list the NFT (after approving the marketplace), withdraw the listing. `*_call` records the intent (an inactive
row) and returns the transaction to send; `*_confirm` verifies it from its receipt and event
(`contracts.wallet_tx`) and activates the row. `marketplace.services.sync` does the same from indexed events."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from eth_utils import keccak, to_checksum_address

from contracts import chain, wallet_tx
from marketplace.models import LicenceTerms, Listing, ModelToken
from marketplace.services.errors import MarketplaceRefused
from marketplace.services.records import record_listing, record_terms, record_unlisting

MAX_PRICE_WEI = 2**96 - 1  # the contract stores prices as uint96


def terms_hash_of(text: str) -> str:
    """keccak256 of the terms text (UTF-8), 0x-prefixed: the hash committed on chain."""
    return "0x" + keccak(text=text).hex()


def require_owner(*, token: ModelToken, user) -> None:
    if not user.is_authenticated or to_checksum_address(user.username) != to_checksum_address(token.owner):
        raise MarketplaceRefused("not_owner", "Only the NFT's current owner can do that.")


def _price(price_wei: int) -> int:
    if not 0 <= int(price_wei) <= MAX_PRICE_WEI:
        raise MarketplaceRefused("invalid", f"A price is 0 to {MAX_PRICE_WEI} wei.")
    return int(price_wei)


def _call(contract: str, function: str, args: list) -> dict:
    tx = chain.build_call(contract, function, args)
    data = tx["data"]
    data = "0x" + bytes(data).hex() if isinstance(data, bytes | bytearray) else str(data)
    return {"to": tx["to"], "data": data, "value": "0x0", "chainId": settings.CHAIN_ID}


def _confirm(*, token, user, tx_hash: str, event_name: str, expected: dict, action: str) -> dict:
    require_owner(token=token, user=user)
    try:
        confirmed = wallet_tx.wallet_tx_confirm(
            tx_hash=tx_hash,
            sender=user.username,
            contract_name="Marketplace",
            event_name=event_name,
            expected_args={"tokenId": token.token_id, **expected},
            action=action,
            who="the NFT owner's wallet",
        )
    except wallet_tx.WalletTxError as exc:
        raise MarketplaceRefused(exc.code, str(exc)) from exc
    return confirmed.event


def licence_terms_call(*, token: ModelToken, user, price_wei: int, duration_s: int, terms: str) -> dict:
    """Record pending terms (price wei, duration seconds with 0 = perpetual, text) and return the
    setLicenceTerms transaction. Price 0 withdraws the offer."""
    require_owner(token=token, user=user)
    price, terms = _price(price_wei), (terms or "").strip()
    if price and not terms:
        raise MarketplaceRefused(
            "invalid", "Licence terms need a text (what the buyer may do with the model)."
        )
    if not 0 <= int(duration_s) < 2**64:
        raise MarketplaceRefused("invalid", "A duration is 0 (perpetual) or a number of seconds.")
    digest = terms_hash_of(terms) if price else "0x" + "00" * 32
    LicenceTerms.objects.create(
        token=token,
        set_by=to_checksum_address(user.username),
        price_wei=Decimal(price),
        duration_s=int(duration_s),
        terms=terms,
        terms_hash=digest,
    )
    return _call("Marketplace", "setLicenceTerms", [token.token_id, price, int(duration_s), digest])


def licence_terms_confirm(*, token: ModelToken, user, tx_hash: str) -> LicenceTerms:
    event = _confirm(
        token=token,
        user=user,
        tx_hash=tx_hash,
        event_name="LicenceTermsSet",
        expected={"owner": user.username},
        action="set this model's licence terms",
    )
    return record_terms(event=event)


def listing_calls(*, token: ModelToken, user, price_wei: int) -> list[dict]:
    """Record a pending listing and return the two transactions: ModelNFT.approve(marketplace, tokenId), then
    Marketplace.listNFT(tokenId, price)."""
    require_owner(token=token, user=user)
    price = _price(price_wei)
    if price == 0:
        raise MarketplaceRefused("invalid", "A listing needs a price above 0 wei.")
    Listing.objects.create(token=token, seller=to_checksum_address(user.username), price_wei=Decimal(price))
    market = chain.deployment_address("Marketplace")
    return [
        _call("ModelNFT", "approve", [market, token.token_id]),
        _call("Marketplace", "listNFT", [token.token_id, price]),
    ]


def listing_confirm(*, token: ModelToken, user, tx_hash: str) -> Listing:
    event = _confirm(
        token=token,
        user=user,
        tx_hash=tx_hash,
        event_name="NFTListed",
        expected={"seller": user.username},
        action="list this NFT",
    )
    return record_listing(event=event)


def unlist_call(*, token: ModelToken, user) -> dict:
    require_owner(token=token, user=user)
    if not token.listings.filter(active=True).exists():
        raise MarketplaceRefused("not_listed", "This NFT is not listed.")
    return _call("Marketplace", "cancelNFTListing", [token.token_id])


def unlist_confirm(*, token: ModelToken, user, tx_hash: str) -> int:
    event = _confirm(
        token=token,
        user=user,
        tx_hash=tx_hash,
        event_name="NFTListingCancelled",
        expected={"seller": user.username},
        action="withdraw this listing",
    )
    return record_unlisting(event=event)
