"""Marketplace services (keyword-only): owner actions, purchases, downloads, reconciliation from the index."""

from marketplace.services.downloads import LINK_MAX_AGE_S, download_links, download_open
from marketplace.services.errors import MarketplaceRefused, revert_refusal
from marketplace.services.owner import (
    licence_terms_call,
    licence_terms_confirm,
    listing_calls,
    listing_confirm,
    terms_hash_of,
    unlist_call,
    unlist_confirm,
)
from marketplace.services.purchases import licence_buy_call, nft_buy_call, purchase_confirm
from marketplace.services.records import token_get
from marketplace.services.sync import marketplace_sync_chain_events

__all__ = [
    "LINK_MAX_AGE_S",
    "MarketplaceRefused",
    "download_links",
    "download_open",
    "licence_buy_call",
    "licence_terms_call",
    "licence_terms_confirm",
    "listing_calls",
    "listing_confirm",
    "marketplace_sync_chain_events",
    "nft_buy_call",
    "purchase_confirm",
    "revert_refusal",
    "terms_hash_of",
    "token_get",
    "unlist_call",
    "unlist_confirm",
]
