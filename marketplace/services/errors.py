"""Refusals of the marketplace, in words a buyer or owner can act on, and the decoded Marketplace custom errors
(contracts/solidity/Marketplace.sol) turned into such words."""

from __future__ import annotations

from decimal import Decimal


class MarketplaceRefused(Exception):
    """A marketplace operation refused; ``code`` is stable for programs, ``str(exc)`` is for people.

    Codes: ``not_found``, ``not_owner``, ``own_model``, ``not_for_sale``, ``not_listed``, ``terms_changed``,
    ``wrong_amount``, ``wrong_chain``, ``insufficient_funds``, ``reverted``, ``invalid``, ``not_a_purchase``
    and the `contracts.wallet_tx.WalletTxError` codes (``not_mined``, ``wrong_sender``, …).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def eth(wei) -> str:
    """Wei as ETH for messages: "0.1 ETH (100000000000000000 wei)"."""
    value = Decimal(int(wei)) / Decimal(10**18)
    return f"{value.normalize():f} ETH ({int(wei)} wei)"


_WORDS = {
    "MarketplaceWrongPayment": (
        "wrong_amount",
        lambda a: (
            f"The amount sent was {eth(a['sent'])} but the price is {eth(a['expected'])}; nothing was bought."
        ),
    ),
    "MarketplaceNotListed": (
        "not_listed",
        lambda a: "The NFT is no longer listed (it was sold to someone else or the listing was withdrawn).",
    ),
    "MarketplaceListingStale": (
        "not_listed",
        lambda a: "The listing is out of date: the NFT changed hands since it was listed.",
    ),
    "MarketplaceOwnModel": (
        "own_model",
        lambda a: "You own this model: you cannot buy it or a licence of it.",
    ),
    "MarketplaceLicenceNotForSale": (
        "not_for_sale",
        lambda a: "Licences of this model are not for sale (any more).",
    ),
    "MarketplaceLicenceTermsChanged": (
        "terms_changed",
        lambda a: (
            "The licence price or terms changed after you loaded the page (now "
            f"{eth(a['price'])}); reload the page to see the new terms."
        ),
    ),
    "MarketplaceNotTokenOwner": ("not_owner", lambda a: "Only the NFT's current owner can do that."),
    "MarketplaceNotApproved": (
        "not_approved",
        lambda a: "The marketplace is not approved to transfer this NFT: approve it first, then list.",
    ),
    "MarketplaceNotSeller": ("not_owner", lambda a: "Only the seller can withdraw this listing."),
}


def revert_refusal(error_name: str, args: dict, reason: str = "") -> MarketplaceRefused:
    """The refusal for a reverted Marketplace transaction (decoded custom error `error_name` with `args`)."""
    if error_name in _WORDS:
        code, words = _WORDS[error_name]
        try:
            return MarketplaceRefused(code, words(args))
        except (KeyError, TypeError, ValueError):
            return MarketplaceRefused(code, f"The transaction failed on chain: {reason or error_name}.")
    return MarketplaceRefused(
        "reverted", f"The transaction failed on chain (reverted: {reason or 'no reason'})."
    )
