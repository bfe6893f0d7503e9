"""Recording verified Marketplace / ModelNFT events (from a receipt or from the index) as rows. Every function
takes a decoded event dict ({"event", "args", "tx_hash", "block_number", ...}, as `contracts.chain.decode_logs`
and `ChainEvent` give it) and is idempotent: the same event applied twice changes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from eth_utils import to_checksum_address

from marketplace import token_columns
from marketplace.models import Licence, LicenceTerms, Listing, ModelToken, NFTSale, Purchase
from marketplace.services.errors import MarketplaceRefused
from tasks.models import Task


def token_get(*, token_id: int) -> ModelToken:
    """The recorded NFT `token_id` on this chain; MarketplaceRefused("not_found") if none."""
    token = ModelToken.objects.filter(chain_id=settings.CHAIN_ID, token_id=int(token_id)).first()
    if token is None:
        raise MarketplaceRefused("not_found", f"No model NFT #{token_id} is known on this chain.")
    return token


def _locked(token: ModelToken) -> None:
    """Lock the token's row until the transaction ends: concurrent records of the same token then refresh its
    list columns one after the other, each seeing the other's rows (call first in the transaction)."""
    ModelToken.objects.select_for_update().filter(pk=token.pk).values_list("pk", flat=True).first()


def _refresh(token: ModelToken) -> None:
    """The token's list columns (`marketplace.token_columns`) recomputed in the recording transaction."""
    token_columns.refresh([token.pk])


def _user_of(address: str):
    return get_user_model().objects.filter(username__iexact=address).first()


def record_transfer(*, event: dict) -> ModelToken | None:
    """ModelNFT Transfer: create the token row at mint, move `owner` when the transfer is newer. None if the
    token is not one of this platform's tasks."""
    args = event["args"]
    token_id, to, block = int(args["tokenId"]), to_checksum_address(args["to"]), int(event["block_number"])
    with transaction.atomic():
        token = (
            ModelToken.objects.select_for_update()
            .filter(chain_id=settings.CHAIN_ID, token_id=token_id)
            .first()
        )
        if token is None:
            task = Task.objects.filter(chain_id=settings.CHAIN_ID, chain_task_id=token_id).first()
            if task is None:
                return None
            token, created = ModelToken.objects.get_or_create(
                task=task,
                defaults={
                    "chain_id": settings.CHAIN_ID,
                    "token_id": token_id,
                    "owner": to,
                    "owner_block": block,
                },
            )
            if created:  # its final model's accuracy
                _refresh(token)
        if block >= token.owner_block and token.owner != to:
            token.owner, token.owner_block = to, block
            token.save(update_fields=["owner", "owner_block"])
            # listings and licence terms of the previous owner lapse on chain; so do the records
            token.listings.filter(active=True).exclude(seller=to).update(active=False)
            token.licence_terms.filter(active=True).exclude(set_by=to).update(active=False)
            _refresh(token)
    return token


def record_terms(*, event: dict, terms_text: str | None = None) -> LicenceTerms:
    """LicenceTermsSet: activate the matching pending terms (or record them; a text set outside the platform is
    unknown), deactivate the token's other terms."""
    args, token = event["args"], token_get(token_id=int(event["args"]["tokenId"]))
    terms_hash, price = str(args["termsHash"]).lower(), Decimal(int(args["price"]))
    with transaction.atomic():
        _locked(token)
        row = token.licence_terms.filter(tx_hash=event["tx_hash"].lower()).first() or (
            token.licence_terms.filter(
                active=False,
                tx_hash="",
                terms_hash=terms_hash,
                price_wei=price,
                duration_s=int(args["duration"]),
            )
            .order_by("-created_at")
            .first()
        )
        if row is None:
            row = LicenceTerms(
                token=token,
                set_by=to_checksum_address(args["owner"]),
                price_wei=price,
                duration_s=int(args["duration"]),
                terms=terms_text or "(terms text not recorded: set outside the platform)",
                terms_hash=terms_hash,
            )
        row.tx_hash, row.active = event["tx_hash"].lower(), price > 0
        row.save()
        token.licence_terms.exclude(pk=row.pk).filter(active=True).update(active=False)
        _refresh(token)
    return row


def record_listing(*, event: dict) -> Listing:
    """NFTListed: activate the matching pending listing (or record it); the token's other listings end."""
    args, token = event["args"], token_get(token_id=int(event["args"]["tokenId"]))
    seller, price = to_checksum_address(args["seller"]), Decimal(int(args["price"]))
    with transaction.atomic():
        _locked(token)
        row = token.listings.filter(tx_hash=event["tx_hash"].lower()).first() or (
            token.listings.filter(active=False, tx_hash="", seller=seller, price_wei=price)
            .order_by("-created_at")
            .first()
        )
        row = row or Listing(token=token, seller=seller, price_wei=price)
        row.tx_hash, row.active = event["tx_hash"].lower(), True
        row.save()
        token.listings.exclude(pk=row.pk).filter(active=True).update(active=False)
        _refresh(token)
    return row


def record_unlisting(*, event: dict) -> int:
    """NFTListingCancelled: the token's active listings end; returns how many."""
    token = token_get(token_id=int(event["args"]["tokenId"]))
    with transaction.atomic():
        _locked(token)
        ended = token.listings.filter(active=True).update(active=False)
        _refresh(token)
    return ended


def _expiry(seconds: int) -> dt.datetime | None:
    return None if seconds == 0 else dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def record_purchase(*, event: dict, source: str, user=None, fee_wei: int | None = None) -> Purchase:
    """LicencePurchased (grants the licence) or NFTSold (records the sale and the new owner), keyed by tx hash:
    a second call, concurrent or not, returns the existing Purchase and creates nothing."""
    return record_purchase_created(event=event, source=source, user=user, fee_wei=fee_wei)[0]


def record_purchase_created(
    *, event: dict, source: str, user=None, fee_wei: int | None = None
) -> tuple[Purchase, bool]:
    """`record_purchase`, and whether this call created the record (exactly one of concurrent calls does)."""
    args, tx_hash = event["args"], event["tx_hash"].lower()
    token = token_get(token_id=int(args["tokenId"]))
    buyer = to_checksum_address(args["buyer"])
    kind = Purchase.Kind.LICENCE if event["event"] == "LicencePurchased" else Purchase.Kind.NFT
    user = user or _user_of(buyer)
    with transaction.atomic():
        _locked(token)
        purchase, created = Purchase.objects.get_or_create(
            tx_hash=tx_hash,
            defaults={
                "kind": kind,
                "token": token,
                "buyer": buyer,
                "user": user,
                "price_wei": Decimal(int(args["price"])),
                "source": source,
                "fee_wei": fee_wei,
            },
        )
        if not created:
            return purchase, False
        block = int(event["block_number"])
        if kind == Purchase.Kind.LICENCE:
            Licence.objects.create(
                token=token,
                buyer=buyer,
                user=user,
                price_wei=purchase.price_wei,
                licence_id=int(args["licenceId"]),
                terms_hash=str(args["termsHash"]).lower(),
                expires_at=_expiry(int(args["expiresAt"])),
                tx_hash=tx_hash,
                block_number=block,
            )
        else:
            NFTSale.objects.create(
                token=token,
                seller=to_checksum_address(args["seller"]),
                buyer=buyer,
                price_wei=purchase.price_wei,
                royalty_wei=Decimal(int(args["royalty"])),
                tx_hash=tx_hash,
                block_number=block,
            )
            token.listings.filter(active=True).update(active=False)
            record_transfer(event={"args": {"tokenId": token.token_id, "to": buyer}, "block_number": block})
        _refresh(token)
    return purchase, True
