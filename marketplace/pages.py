"""What the model page shows (reads only): the card, the chart, the lineage from task to NFT, stakeholders with
what they earned (indexed StakeToken payout events), the offers in force, the sales history, and which buttons
fit the visitor (owner, licence holder, anyone signed in, anonymous). Amounts in wei and ETH text."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils.safestring import mark_safe
from eth_utils import is_address, to_checksum_address

from contracts.models import ChainEvent, ChainTx
from marketplace import selectors
from marketplace.card_markdown import card_html
from marketplace.models import ModelToken
from training import selectors as training_selectors
from training import task_page
from training.holdings import PAYOUT_EVENTS
from training.model_facts import nft_mint_key
from training.models import Finalization, FinalModel, OnnxExport, StakeAllocation

WEI_PER_ETH = Decimal(10) ** 18
TOTAL_SHARES = 10_000


def eth_text(wei) -> str:
    """Wei as exact ETH text ("0.1"); "–" for None."""
    if wei is None:
        return "–"
    text = f"{Decimal(int(wei)) / WEI_PER_ETH:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration_text(seconds: int | None) -> str:
    if not seconds:
        return "perpetual"
    days = int(seconds) / 86_400
    return f"{days:g} days" if days >= 1 else f"{int(seconds)} seconds"


def visitor_wallet(user) -> str:
    """The signed-in user's checksummed wallet, or "" (anonymous, or an account without a wallet)."""
    if not user.is_authenticated or not is_address(user.username):
        return ""
    return to_checksum_address(user.username)


def _card(final: FinalModel | None) -> str:
    if final is None or not final.card:
        return ""
    try:
        with final.card.open("rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return mark_safe(card_html(text))  # noqa: S308 - card_html escapes every text


def stakeholders(*, token: ModelToken, allocations: list[StakeAllocation] | None = None) -> list[dict]:
    """[{holder, shares, percent, earned_wei, earned_eth}] biggest first; earned = the indexed payouts
    (DividendClaimed, PayoutPushed) of this model's stake id to the holder. Two queries (one when the task's
    `allocations` are passed)."""
    if allocations is None:
        allocations = list(StakeAllocation.objects.filter(task_id=token.task_id))
    allocs = sorted(allocations, key=lambda a: (-a.shares, a.holder))
    earned: dict[str, int] = defaultdict(int)
    events = ChainEvent.objects.filter(
        chain_id=settings.CHAIN_ID, contract_name="StakeToken", event__in=PAYOUT_EVENTS
    ).filter(args__id=token.task.chain_task_id)
    for e in events.only("args"):
        account = str(e.args.get("account", ""))
        if is_address(account):
            earned[to_checksum_address(account)] += int(e.args.get("amount", 0))
    rows = []
    for a in allocs:
        wei = earned.get(to_checksum_address(a.holder), 0)
        rows.append(
            {
                "holder": a.holder,
                "shares": a.shares,
                "percent": 100 * a.shares / TOTAL_SHARES,
                "earned_wei": wei,
                "earned_eth": eth_text(wei),
            }
        )
    return rows


def sales_history(*, token: ModelToken) -> list[dict]:
    """NFT sales and licences, newest first: [{kind, buyer, price_eth, royalty_eth, tx_hash, block, at}]."""
    rows = [
        {
            "kind": "NFT",
            "buyer": s.buyer,
            "seller": s.seller,
            "price_eth": eth_text(s.price_wei),
            "royalty_eth": eth_text(s.royalty_wei),
            "tx_hash": s.tx_hash,
            "block": s.block_number,
            "at": s.created_at,
        }
        for s in token.sales.all()
    ]
    rows += [
        {
            "kind": "Licence",
            "buyer": lic.buyer,
            "seller": "",
            "price_eth": eth_text(lic.price_wei),
            "royalty_eth": "",
            "tx_hash": lic.tx_hash,
            "block": lic.block_number,
            "at": lic.created_at,
            "expires_at": lic.expires_at,
        }
        for lic in token.licences.all()
    ]
    return sorted(rows, key=lambda r: (r["block"], r["at"]), reverse=True)


def visitor(*, token: ModelToken, user) -> dict:
    """Which buttons fit: {wallet, is_owner, has_access, licence (the visitor's newest valid licence or None),
    can_buy_licence (not for the owner, nor a holder of a perpetual licence), can_buy_nft}."""
    wallet = visitor_wallet(user)
    is_owner = bool(wallet) and wallet == to_checksum_address(token.owner)
    licence = None
    if wallet and not is_owner:
        licence = next(
            (x for x in token.licences.filter(buyer=wallet).order_by("-created_at") if x.is_valid()), None
        )
    return {
        "wallet": wallet,
        "is_owner": is_owner,
        "has_access": is_owner or licence is not None,
        "licence": licence,
        # a perpetual licence needs no other; an expiring one may be bought again (a new licence from now)
        "can_buy_licence": bool(wallet)
        and not is_owner
        and token.licence_price is not None
        and not (licence is not None and licence.expires_at is None),
        "can_buy_nft": bool(wallet) and not is_owner and token.nft_price is not None,
    }


def _lineage_facts(*, task, fin: Finalization | None, contributions: list[dict]) -> dict:
    """What the page shows of `training.model_facts` (same keys), without the parts it does not show (contract
    addresses, stakes list, bans, the rounds again): dataset, features, labels, participants, the chain's
    create/settle/mint hashes and the stakes root."""
    mint = ChainTx.objects.filter(idempotency_key=nft_mint_key(task)).only("tx_hash").first()
    return {
        "data": {
            "feature_shape": task.feature_shape,
            "labels": task.label_set,
            "dataset": (task.validation_summary or {}).get("dataset"),
        },
        "participants": len(contributions),  # one Contribution row each
        "chain": {
            "create_tx_hash": task.create_tx_hash,
            "settle_tx_hash": fin.settled_tx_hash if fin else "",
            "mint_tx_hash": mint.tx_hash if mint else "",
            "stakes_root": fin.stakes_root if fin else "",
        },
    }


def model_page(*, token: ModelToken, user) -> dict:
    """The model page's context (see the module docstring). About 13 queries whatever the model's history."""
    task = token.task
    final = (
        FinalModel.objects.filter(task=task)
        .select_related("source_round")
        .annotate(onnx_ready=Exists(OnnxExport.objects.filter(final_model=OuterRef("pk"))))
        .first()
    )
    rounds = training_selectors.task_rounds(task=task)
    terms = selectors.active_licence_terms(token=token)
    contributions = task_page.contributions_page(task=task)
    fin = Finalization.objects.filter(task=task).first()
    allocations = list(StakeAllocation.objects.filter(task=task))
    return {
        "token": token,
        "task": task,
        "facts": _lineage_facts(task=task, fin=fin, contributions=contributions),
        "final": final,
        "accuracy_percent": None if token.accuracy is None else 100 * token.accuracy,
        "onnx_ready": final is not None and final.onnx_ready,
        "card": _card(final),
        "chart": mark_safe(task_page.metrics_chart_svg(rounds)),  # noqa: S308 - built from numbers
        "rounds": rounds,
        "contributions": contributions,
        "settlement": task_page.settlement_page(task=task, fin=fin, allocations=allocations),
        "stakeholders": stakeholders(token=token, allocations=allocations),
        "terms": terms,
        "terms_duration": duration_text(terms.duration_s) if terms else "",
        "licence_price_eth": eth_text(token.licence_price),
        "nft_price_eth": eth_text(token.nft_price),
        "sales": sales_history(token=token),
        "me": visitor(token=token, user=user),
    }
