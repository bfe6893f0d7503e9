"""Public token metadata (what `ModelNFT.tokenURI`, `contractURI` and `StakeToken.uri` point at) and the
model's picture. Read-only, no sign-in: token metadata is public by nature. Only tokens that exist are
described (the task's model NFT is minted), else 404."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from contracts.models import ChainTx
from tasks.models import Task
from training import metadata
from training.model_facts import model_facts, nft_mint_key

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _site(request) -> str:
    return (getattr(settings, "SITE_URL", "") or request.build_absolute_uri("/")).rstrip("/")


def _minted_task(token_id: int) -> Task:
    """The task whose model NFT `token_id` (= its on-chain task id) is minted on this chain; else 404."""
    task = (
        Task.objects.select_related("creator")
        .filter(chain_id=settings.CHAIN_ID, chain_task_id=token_id)
        .first()
    )
    if task is None:
        raise Http404("no such token")
    minted = ChainTx.objects.filter(idempotency_key=nft_mint_key(task), status=ChainTx.Status.CONFIRMED)
    if not minted.exists():
        raise Http404("no such token")
    return task


def _stake_task(token_id: int) -> Task:
    """The task whose stakes (id = its on-chain id) are open: settled by finalize or fail; else 404."""
    task = (
        Task.objects.select_related("creator")
        .filter(
            chain_id=settings.CHAIN_ID,
            chain_task_id=token_id,
            finalization__settlement__in=["finalize", "fail"],
        )
        .first()
    )
    if task is None:
        raise Http404("no such stake")
    return task


@require_GET
@cache_control(public=True, max_age=60)
def nft_metadata(request, token_id: int):
    """ERC-721 metadata JSON of model NFT `token_id` (OpenSea's fields)."""
    task = _minted_task(token_id)
    return JsonResponse(metadata.nft_metadata(model_facts(task=task), site=_site(request)))


@require_GET
@cache_control(public=True, max_age=60)
def nft_image(request, token_id: int):
    """The model's picture: the accuracy curve and key numbers (SVG)."""
    task = _minted_task(token_id)
    svg = metadata.curve_svg(model_facts(task=task))
    return HttpResponse(svg, content_type="image/svg+xml")


@require_GET
@cache_control(public=True, max_age=300)
def nft_contract(request):
    """ERC-7572 `contractURI` JSON of the ModelNFT collection."""
    return JsonResponse(metadata.contract_metadata(site=_site(request)))


@require_GET
@cache_control(public=True, max_age=60)
def stake_metadata(request, hex_id: str):
    """ERC-1155 metadata of stake `{id}` (64 lowercase hex digits, no 0x, per EIP-1155)."""
    if not _HEX64.match(hex_id):
        raise Http404("the id must be 64 lowercase hex digits")
    task = _stake_task(int(hex_id, 16))
    return JsonResponse(metadata.stake_metadata(model_facts(task=task), site=_site(request)))
