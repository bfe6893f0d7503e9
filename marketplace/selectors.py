"""Reads of the marketplace (no writes). `model_list` backs both the API's list and the browse page: one
queryset, every per-row fact an annotation, so a page costs the same number of queries whatever its size."""

from __future__ import annotations

import functools
from decimal import Decimal

from django.core.cache import cache
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from eth_utils import is_hex_address, to_checksum_address

from marketplace.models import Licence, LicenceTerms, Listing, ModelToken
from marketplace.search import search_tokens

DATASETS_CACHE_KEY, DATASETS_TTL_S = "marketplace:datasets", 60

SORTS = {
    "newest": ("-minted_at", "-pk"),
    "oldest": ("minted_at", "pk"),
    "title": ("task__title", "pk"),
    "licence_price": (F("licence_price_wei").asc(nulls_last=True), "pk"),
    "-licence_price": (F("licence_price_wei").desc(nulls_last=True), "pk"),
    "nft_price": (F("nft_price_wei").asc(nulls_last=True), "pk"),
    "-nft_price": (F("nft_price_wei").desc(nulls_last=True), "pk"),
    "licences_sold": ("-licences_sold", "pk"),
    "accuracy": (F("accuracy").desc(nulls_last=True), "pk"),
    "sales": ("-sales_count", "-licences_sold", "pk"),
}


def active_licence_terms(*, token: ModelToken) -> LicenceTerms | None:
    """The terms in force (set by the current owner, price > 0), or None."""
    return (
        token.licence_terms.filter(active=True, set_by=token.owner, price_wei__gt=0)
        .order_by("-updated_at", "-pk")
        .first()
    )


def active_listing(*, token: ModelToken) -> Listing | None:
    return token.listings.filter(active=True, seller=token.owner).order_by("-updated_at", "-pk").first()


def model_list(
    *,
    q: str = "",
    model_kind: str = "",
    dataset: str = "",
    licence_for_sale: bool | None = None,
    nft_for_sale: bool | None = None,
    owner: str = "",
    accuracy_min: float | None = None,
    accuracy_max: float | None = None,
    price_min_wei: int | None = None,
    price_max_wei: int | None = None,
    sort: str = "newest",
) -> QuerySet[ModelToken]:
    """Minted models with their task and creator: the columns `licence_terms_hash`, `licences_sold`,
    `sales_count`, `accuracy` (0..1, the final model's source round) and the annotations `licence_price`,
    `licence_duration`, `nft_price` (None when not for sale; aliases of the columns `marketplace.token_columns`
    keeps).

    `q` searches title, description, model kind and dataset (`marketplace.search`: every word, full-text
    prefixes on PostgreSQL); `accuracy_*` bound the accuracy (0..1);
    `price_*_wei` keep models whose licence price or NFT price lies in the range (wei); `sort` is one of
    `SORTS`."""
    qs = search_tokens(_annotated(), q)
    if model_kind:
        qs = qs.filter(task__model_kind=model_kind)
    if dataset:
        qs = qs.filter(task__validation_summary__dataset=dataset)
    if licence_for_sale is not None:
        qs = qs.filter(licence_price_wei__isnull=not licence_for_sale)
    if nft_for_sale is not None:
        qs = qs.filter(nft_price_wei__isnull=not nft_for_sale)
    if owner and is_hex_address(owner):
        qs = qs.filter(owner=to_checksum_address(owner))
    if accuracy_min is not None:
        qs = qs.filter(accuracy__gte=accuracy_min)
    if accuracy_max is not None:
        qs = qs.filter(accuracy__lte=accuracy_max)
    qs = _price_range(qs, price_min_wei, price_max_wei)
    return qs.order_by(*SORTS.get(sort, SORTS["newest"]))


def _annotated() -> QuerySet[ModelToken]:
    """A fresh clone of the annotated list (building the annotations anew costs Python time every request;
    the base queryset is never evaluated, only cloned, like a view's class-level `queryset`)."""
    return _annotated_base().all()


@functools.cache
def _annotated_base() -> QuerySet[ModelToken]:
    # prices, terms, counts and accuracy are ModelToken's columns (`marketplace.token_columns`, kept by the record
    # functions), indexed for the sorts: a search matching thousands of tasks evaluates no subquery per match
    return ModelToken.objects.select_related("task", "task__creator").annotate(
        licence_price=F("licence_price_wei"),
        licence_duration=F("licence_duration_s"),
        nft_price=F("nft_price_wei"),
    )


def _price_range(qs: QuerySet[ModelToken], low: int | None, high: int | None) -> QuerySet[ModelToken]:
    if low is None and high is None:
        return qs
    licence, nft = Q(licence_price_wei__isnull=False), Q(nft_price_wei__isnull=False)
    if low is not None:
        licence &= Q(licence_price_wei__gte=Decimal(low))
        nft &= Q(nft_price_wei__gte=Decimal(low))
    if high is not None:
        licence &= Q(licence_price_wei__lte=Decimal(high))
        nft &= Q(nft_price_wei__lte=Decimal(high))
    return qs.filter(licence | nft)


def model_get(*, token_id: int) -> ModelToken | None:
    from django.conf import settings

    return model_list().filter(chain_id=settings.CHAIN_ID, token_id=token_id).first()


def datasets() -> list[str]:
    """The datasets of minted models (for the browse page's filter), sorted. Cached `DATASETS_TTL_S` seconds in
    the process's cache (a DISTINCT over every minted model's task, 13 ms at 10,000 models): a new dataset shows
    up in the filter within a minute; no price, owner or purchase is cached."""
    cached = cache.get(DATASETS_CACHE_KEY)
    if cached is None:
        names = ModelToken.objects.values_list("task__validation_summary__dataset", flat=True).distinct()
        cached = sorted({str(n) for n in names if n})
        cache.set(DATASETS_CACHE_KEY, cached, DATASETS_TTL_S)
    return cached


def listings_active() -> QuerySet[Listing]:
    """NFTs for sale now (listed by their current owner), newest first."""
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
