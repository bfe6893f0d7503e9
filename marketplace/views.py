"""Marketplace pages: browse models, a model's page, my models, my purchases, use a model; and the small JSON
endpoints the page's wallet script calls (`static/js/marketplace.js`): get a transaction the services build, then
confirm the owner's mined transaction. Purchases are confirmed by `/api/v1/purchases/confirm/`. Every POST needs
the CSRF token; refusals are `MarketplaceRefused` words, as JSON `{"error", "code"}`."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from marketplace import pages, selectors, services
from marketplace.forms import BrowseForm, LicenceTermsForm, ListingForm, PredictForm
from marketplace.models import ModelToken
from tasks.decorators import login_required_to
from training.models import FinalModel, OnnxExport
from training.predict import ModelNotReady, PredictInputError, predict

_STATUS = {"not_found": 404, "forbidden": 403, "not_owner": 403, "wrong_sender": 403, "not_mined": 409}
_STATUS.update(dict.fromkeys(("own_model", "not_for_sale", "not_listed", "terms_changed"), 409))


def _token(token_id: int) -> ModelToken:
    token = selectors.model_get(token_id=token_id)
    if token is None:
        raise Http404("No such model.")
    return token


def _refused(refusal: services.MarketplaceRefused) -> JsonResponse:
    return JsonResponse(
        {"error": refusal.message, "code": refusal.code}, status=_STATUS.get(refusal.code, 400)
    )


def _body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {}


@require_GET
def model_browse(request: HttpRequest) -> HttpResponse:
    """Search, filter, sort and page the minted models (`selectors.model_list`: constant queries per page)."""
    form = BrowseForm(request.GET or None)
    kwargs = {"sort": "newest"}
    if form.is_bound and form.is_valid():
        kwargs = form.selector_kwargs(wallet=pages.visitor_wallet(request.user))
    per_page = (form.cleaned_data.get("per_page") if form.is_bound and form.is_valid() else None) or 12
    page = Paginator(selectors.model_list(**kwargs), per_page).get_page(request.GET.get("page"))
    for token in page:
        token.accuracy_percent = None if token.accuracy is None else 100 * token.accuracy
        token.licence_price_eth = pages.eth_text(token.licence_price)
        token.nft_price_eth = pages.eth_text(token.nft_price)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "marketplace/browse.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_GET
def model_detail(request: HttpRequest, token_id: int) -> HttpResponse:
    """A model's page: card, chart, lineage, stakeholders, offers, sales, and the visitor's buttons."""
    token = _token(token_id)
    context = pages.model_page(token=token, user=request.user)
    terms = context["terms"]
    context["terms_form"] = LicenceTermsForm(
        initial={
            "price_eth": pages.eth_text(terms.price_wei) if terms else "",
            "duration_days": terms.duration_s // 86_400 if terms and terms.duration_s else 30,
            "perpetual": bool(terms) and not terms.duration_s,
            "terms": terms.terms if terms else token.task.licence_terms,
        }
    )
    context["listing_form"] = ListingForm()
    return render(request, "marketplace/detail.html", context)


@login_required_to("see the models you own")
@require_GET
def my_models(request: HttpRequest) -> HttpResponse:
    wallet = pages.visitor_wallet(request.user)
    tokens = list(selectors.model_list(owner=wallet)) if wallet else []
    for token in tokens:
        token.licence_price_eth = pages.eth_text(token.licence_price)
        token.nft_price_eth = pages.eth_text(token.nft_price)
    return render(request, "marketplace/mine.html", {"wallet": wallet, "tokens": tokens})


@login_required_to("see your purchases")
@require_GET
def my_purchases(request: HttpRequest) -> HttpResponse:
    licences = (
        list(selectors.licences_of_user(user=request.user)) if pages.visitor_wallet(request.user) else []
    )
    for lic in licences:
        lic.price_eth = pages.eth_text(lic.price_wei)
    return render(request, "marketplace/purchases.html", {"licences": licences})


@login_required_to("download a model")
@require_POST
def model_downloads(request: HttpRequest, token_id: int) -> HttpResponse:
    """Fresh signed links (valid `LINK_MAX_AGE_S` seconds) for the owner and licence holders; 403 otherwise."""
    token = _token(token_id)
    try:
        links = services.download_links(token=token, user=request.user)
    except services.MarketplaceRefused as refusal:
        raise PermissionDenied(refusal.message) from None
    return render(
        request,
        "marketplace/downloads.html",
        {"token": token, "links": links, "max_age_s": services.LINK_MAX_AGE_S},
    )


@login_required_to("use a model")
@require_http_methods(["GET", "POST"])
def model_predict(request: HttpRequest, token_id: int) -> HttpResponse:
    """Use the model (the owner and holders of a valid licence, like the predict API): CSV rows or a file."""
    token = _token(token_id)
    if not selectors.has_access(token=token, user=request.user):
        raise PermissionDenied("Only the NFT's owner and holders of an unexpired licence can use this model.")
    form = PredictForm(request.POST or None, request.FILES or None)
    rows, error = None, ""
    if request.method == "POST" and form.is_valid():
        final = FinalModel.objects.filter(task_id=token.task_id).select_related("task").first()
        try:
            if final is None or not OnnxExport.objects.filter(final_model=final).exists():
                raise ModelNotReady
            rows = predict(final, form.inputs())
        except PredictInputError as exc:
            error = exc.message
        except ModelNotReady:
            error = "The model's ONNX export is not ready yet; try again later."
    status = 400 if request.method == "POST" and rows is None else 200
    return render(
        request,
        "marketplace/predict.html",
        {"token": token, "form": form, "rows": rows, "error": error},
        status=status,
    )


def _signed_in_json(view):
    """401 as JSON for the wallet script (not a redirect to the sign-in page)."""

    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse(
                {"error": "Sign in with your wallet first.", "code": "not_authenticated"}, status=401
            )
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _form_error(form) -> JsonResponse:
    words = "; ".join(f"{e}" for errors in form.errors.values() for e in errors)
    return JsonResponse({"error": words or "Check the form.", "code": "invalid"}, status=400)


def _wallet_facts(data: dict) -> dict:
    """The chain id and balance the page's wallet reports (for the early refusals; the chain enforces them)."""
    out = {}
    for key in ("wallet_chain_id", "wallet_balance_wei"):
        try:
            out[key] = int(str(data[key]), 0) if data.get(key) not in (None, "") else None
        except (TypeError, ValueError):
            out[key] = None
    return out


def _calls(action: str, token: ModelToken, user, data: dict) -> list[dict] | JsonResponse:
    if action == "buy-licence":
        return [services.licence_buy_call(token=token, user=user, **_wallet_facts(data))]
    if action == "buy-nft":
        return [services.nft_buy_call(token=token, user=user, **_wallet_facts(data))]
    if action == "terms":
        form = LicenceTermsForm(data)
        if not form.is_valid():
            return _form_error(form)
        return [services.licence_terms_call(token=token, user=user, **form.service_kwargs())]
    if action == "list":
        form = ListingForm(data)
        if not form.is_valid():
            return _form_error(form)
        return services.listing_calls(token=token, user=user, **form.service_kwargs())
    return [services.unlist_call(token=token, user=user)]


TX_ACTIONS = ("buy-licence", "buy-nft", "terms", "list", "unlist")
CONFIRMS = {
    "terms": (services.licence_terms_confirm, "Licence terms set on chain."),
    "list": (services.listing_confirm, "The NFT is listed for sale."),
    "unlist": (services.unlist_confirm, "The listing is withdrawn."),
}


@require_POST
@_signed_in_json
def model_tx(request: HttpRequest, token_id: int, action: str) -> JsonResponse:
    """The transaction(s) the visitor's wallet sends for `action` (one of `TX_ACTIONS`), built by the services:
    {"calls": [{to, data, value, chainId, ...}], "confirm_url"}; listing is two calls (approve, then list)."""
    if action not in TX_ACTIONS:
        raise Http404("No such action.")
    token = _token(token_id)
    try:
        calls = _calls(action, token, request.user, _body(request))
    except services.MarketplaceRefused as refusal:
        return _refused(refusal)
    if isinstance(calls, JsonResponse):
        return calls
    confirm = (
        "/api/v1/purchases/confirm/"
        if action.startswith("buy-")
        else f"/marketplace/models/{token.token_id}/confirm/{action}/"
    )
    return JsonResponse({"calls": calls, "confirm_url": confirm})


@require_POST
@_signed_in_json
def model_confirm(request: HttpRequest, token_id: int, action: str) -> JsonResponse:
    """Confirm the owner's mined transaction (`terms`, `list`, `unlist`) from its receipt and event."""
    if action not in CONFIRMS:
        raise Http404("No such action.")
    token = _token(token_id)
    tx_hash = str(_body(request).get("tx_hash", "")).strip()
    confirm, words = CONFIRMS[action]
    try:
        confirm(token=token, user=request.user, tx_hash=tx_hash)
    except services.MarketplaceRefused as refusal:
        return _refused(refusal)
    return JsonResponse({"message": words, "tx_hash": tx_hash.lower()})
