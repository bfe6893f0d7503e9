"""The list's per-model facts kept as columns of `ModelToken` (`licence_price_wei`, `licence_duration_s`,
`licence_terms_hash`, `nft_price_wei`, `licences_sold`, `sales_count`, `accuracy`) so the browse page and the API list filter
and sort on indexed columns instead of evaluating subqueries for every matching row.

`refresh` recomputes them from the rows (the terms in force: active, set by the current owner, price > 0, newest;
the active listing of the current owner, newest; the counts of licences and NFT sales; the accuracy of the
final model's source round) in one UPDATE. The record functions (`marketplace.services.records`) call it in the
transaction that records each fact, after locking the token row; a saved `FinalModel` calls it for its task's
token (`marketplace.apps`); migration 0004 calls it over every row with the historical models."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def refresh(token_ids: Iterable[int] | None = None, *, models=None) -> int:
    """Recompute the columns of the tokens `token_ids` (primary keys; None = every token). `models` is a dict of
    the model classes by name (`MODEL_NAMES` and FinalModel; a migration's historical models), the app's by
    default. Returns the number of tokens updated."""
    if models is None:
        from marketplace import models as app_models
        from training.models import FinalModel

        models = {name: getattr(app_models, name) for name in MODEL_NAMES} | {"FinalModel": FinalModel}
    tokens = models["ModelToken"].objects.all()
    if token_ids is not None:
        tokens = tokens.filter(pk__in=list(token_ids))
    terms = (
        models["LicenceTerms"]
        .objects.filter(token=OuterRef("pk"), active=True, set_by=OuterRef("owner"), price_wei__gt=0)
        .order_by("-updated_at", "-pk")
    )
    listing = (
        models["Listing"]
        .objects.filter(token=OuterRef("pk"), active=True, seller=OuterRef("owner"))
        .order_by("-updated_at", "-pk")
    )
    return tokens.update(
        licence_price_wei=Subquery(terms.values("price_wei")[:1]),
        licence_duration_s=Subquery(terms.values("duration_s")[:1]),
        licence_terms_hash=Subquery(terms.values("terms_hash")[:1]),
        nft_price_wei=Subquery(listing.values("price_wei")[:1]),
        licences_sold=_count(models["Licence"]),
        sales_count=_count(models["NFTSale"]),
        accuracy=Subquery(
            models["FinalModel"]
            .objects.filter(task_id=OuterRef("task_id"))
            .values("source_round__accuracy")[:1]
        ),
    )


MODEL_NAMES = ("ModelToken", "LicenceTerms", "Listing", "Licence", "NFTSale")
COLUMNS = (
    "licence_price_wei",
    "licence_duration_s",
    "licence_terms_hash",
    "nft_price_wei",
    "licences_sold",
    "sales_count",
    "accuracy",
)


def _count(model) -> Coalesce:
    rows = model.objects.filter(token=OuterRef("pk")).order_by().values("token").annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1], output_field=IntegerField()), Value(0))
