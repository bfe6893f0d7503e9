"""Reads of the marketplace (no writes). `model_list` backs both the API's list and the browse page: one
queryset, every per-row fact an annotation, so a page costs the same number of queries whatever its size."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from eth_utils import is_hex_address, to_checksum_address

from marketplace.models import Licence, LicenceTerms, Listing, ModelToken

SORTS = {
    "newest": ("-minted_at", "-pk"),
    "oldest": ("minted_at", "pk"),
    "title": ("task__title", "pk"),
    "licence_price": ("licence_price", "pk"),
    "-licence_price": ("-licence_price", "pk"),
    "nft_price": ("nft_price", "pk"),
    "-nft_price": ("-nft_price", "pk"),
    "licences_sold": ("-licences_sold", "pk"),
}


def active_licence_terms(*, token: ModelToken) -> LicenceTerms | None:
    """The terms in force (set by the current owner, price > 0), or None."""
    return (
        token.licence_terms.filter(active=True, set_by=token.owner, price_wei__gt=0)
        .order_by("-updated_at")
        .first()
    )


def active_listing(*, token: ModelToken) -> Listing | None:
    return token.listings.filter(active=True, seller=token.owner).order_by("-updated_at").first()


def model_list(
    *,
    q: str = "",
    model_kind: str = "",
    licence_for_sale: bool | None = None,
    nft_for_sale: bool | None = None,
    owner: str = "",
    sort: str = "newest",
) -> QuerySet[ModelToken]:
    """Minted models with their task, creator, final model, terms in force and listing as annotations:
    `licence_price`, `licence_duration`, `licence_terms_hash`, `nft_price` (None when not for sale),
    `licences_sold`. `q` searches title and description; `sort` is one of `SORTS`."""
    terms = LicenceTerms.objects.filter(
        token=OuterRef("pk"), active=True, set_by=OuterRef("owner"), price_wei__gt=0
    ).order_by("-updated_at")
    listing = Listing.objects.filter(token=OuterRef("pk"), active=True, seller=OuterRef("owner")).order_by(
        "-updated_at"
    )
    qs = ModelToken.objects.select_related("task", "task__creator", "task__final_model").annotate(
        licence_price=Subquery(terms.values("price_wei")[:1]),
        licence_duration=Subquery(terms.values("duration_s")[:1]),
        licence_terms_hash=Subquery(terms.values("terms_hash")[:1]),
        nft_price=Subquery(listing.values("price_wei")[:1]),
        licences_sold=Count("licences", distinct=True),
    )
    if q:
        qs = qs.filter(Q(task__title__icontains=q) | Q(task__description__icontains=q))
    if model_kind:
        qs = qs.filter(task__model_kind=model_kind)
    if licence_for_sale is not None:
        qs = qs.filter(licence_price__isnull=not licence_for_sale)
    if nft_for_sale is not None:
        qs = qs.filter(nft_price__isnull=not nft_for_sale)
    if owner and is_hex_address(owner):
        qs = qs.filter(owner=to_checksum_address(owner))
    return qs.order_by(*SORTS.get(sort, SORTS["newest"]))


def model_get(*, token_id: int) -> ModelToken | None:
    from django.conf import settings

    return model_list().filter(chain_id=settings.CHAIN_ID, token_id=token_id).first()


def listings_active() -> QuerySet[Listing]:
    """NFTs for sale now (listed by their current owner), newest first."""
    from django.db.models import F

    return (
        Listing.objects.filter(active=True, seller=F("token__owner"))
        .select_related("token", "token__task")
        .order_by("-updated_at", "-pk")
    )


def licences_of_user(*, user) -> QuerySet[Licence]:
    """Licences bought by the user's wallet (valid or expired), newest first."""
    return (
        Licence.objects.filter(buyer=to_checksum_address(user.username))
        .select_related("token", "token__task")
        .order_by("-created_at", "-pk")
    )


def has_access(*, token: ModelToken, user, now=None) -> bool:
    """True for the NFT's current owner (indexed Transfer / confirmed sale) and holders of an unexpired
    licence; False for everyone else (including anonymous users)."""
    if not user.is_authenticated or not is_hex_address(user.username):
        return False
    wallet = to_checksum_address(user.username)
    if wallet == to_checksum_address(token.owner):
        return True
    now = now or timezone.now()
    return (
        token.licences.filter(buyer=wallet)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exists()
    )
