"""Read side of a holder's stakes (the "My stakes" page and `GET /api/v1/stakes/mine/`).

A holder's stake in a trained model is its `StakeAllocation` (shares out of `stakes.TOTAL_SHARES` = 10,000,
Merkle proof) plus what `StakeToken` (ERC-1155, id = the task's on-chain id) says now: whether the shares
are claimed (`sharesClaimed`), revenue claimable now (`claimable`, wei) and earned in total (`accumulated`,
wei; claimed or pushed plus claimable). Payout history comes from the indexed `DividendClaimed` /
`PayoutPushed` events (`contracts.models.ChainEvent`), each with its transaction hash.

The chain may be down: `wallet_stakes` then still returns the platform's records, with the chain fields
None and `chain_error` saying why (it stops reading after the first failure instead of timing out per row).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from eth_utils import is_address, to_checksum_address

from contracts import chain
from contracts.chain.errors import ChainError, ChainUnavailable
from contracts.models import ChainEvent
from training.models import StakeAllocation
from training.stakes import TOTAL_SHARES

PAYOUT_EVENTS = ("DividendClaimed", "PayoutPushed")
WEI_PER_ETH = Decimal(10**18)
SETTLED = ("finalize", "fail")  # Finalization.settlement values after which StakeToken has the stakes root


@dataclass
class StakeHolding:
    """One model's stake of one wallet. Amounts in wei (int); chain fields None when not read."""

    allocation: StakeAllocation
    stake_id: int | None
    open: bool  # the stakes root is on chain (task settled): shares can be claimed
    shares_claimed: bool
    claimable_wei: int | None = None
    accumulated_wei: int | None = None
    payouts: list[dict] = field(default_factory=list)  # [{event, amount_wei, tx_hash, block_number}]
    calls: dict = field(default_factory=dict)  # `holding_calls`: what the page's buttons send

    @property
    def task(self):
        return self.allocation.task

    @property
    def percent(self) -> float:
        return 100 * self.allocation.shares / TOTAL_SHARES

    @property
    def paid_wei(self) -> int:
        return sum(p["amount_wei"] for p in self.payouts)

    @property
    def claimable_eth(self) -> str:
        return eth_text(self.claimable_wei)

    @property
    def accumulated_eth(self) -> str:
        return eth_text(self.accumulated_wei)

    @property
    def paid_eth(self) -> str:
        return eth_text(self.paid_wei)

    def as_dict(self) -> dict:
        """JSON shape of the API (wei as decimal strings: they exceed 2**53)."""
        a = self.allocation

        def wei(v: int | None) -> str | None:
            return None if v is None else str(v)

        return {
            "task_id": a.task_id,
            "task_title": a.task.title,
            "stake_id": self.stake_id,
            "open": self.open,
            "shares": a.shares,
            "total_shares": TOTAL_SHARES,
            "percent": round(self.percent, 2),
            "shares_claimed": self.shares_claimed,
            "claimed_tx_hash": a.claimed_tx_hash,
            "proof": list(a.proof),
            "claimable_wei": wei(self.claimable_wei),
            "accumulated_wei": wei(self.accumulated_wei),
            "paid_wei": str(self.paid_wei),
            "payouts": [
                {
                    "event": p["event"],
                    "amount_wei": str(p["amount_wei"]),
                    "tx_hash": p["tx_hash"],
                    "block_number": p["block_number"],
                }
                for p in self.payouts
            ],
        }


def eth_text(wei: int | None) -> str:
    """Wei as an exact decimal ETH string ("0.25", "1"); "–" for None (not read)."""
    if wei is None:
        return "–"
    text = f"{Decimal(int(wei)) / WEI_PER_ETH:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def wallet_address(username: str) -> str:
    """The checksummed wallet of a signed-in user (username = address), or "" for a non-wallet account."""
    return to_checksum_address(username) if is_address(username) else ""


def _payouts(*, wallet: str, stake_ids: list[int]) -> dict[int, list[dict]]:
    """{stake id: payouts to `wallet`, oldest first} from the indexed StakeToken events (one query)."""
    out: dict[int, list[dict]] = defaultdict(list)
    if not stake_ids:
        return out
    events = ChainEvent.objects.filter(
        chain_id=settings.CHAIN_ID,
        contract_name="StakeToken",
        event__in=PAYOUT_EVENTS,
        args__account=wallet,
    ).order_by("block_number", "log_index")
    wanted = set(stake_ids)
    for e in events:
        sid = int(e.args.get("id", -1))
        if sid in wanted:
            out[sid].append(
                {
                    "event": e.event,
                    "amount_wei": int(e.args.get("amount", 0)),
                    "amount_eth": eth_text(int(e.args.get("amount", 0))),
                    "tx_hash": e.tx_hash,
                    "block_number": e.block_number,
                }
            )
    return out


def _read_chain(h: StakeHolding, wallet: str) -> None:
    """Fill `h` from StakeToken; raises `ChainError` (the caller stops reading)."""
    h.shares_claimed = (
        bool(chain.call("StakeToken", "sharesClaimed", [h.stake_id, wallet])) or h.shares_claimed
    )
    h.claimable_wei = int(chain.call("StakeToken", "claimable", [h.stake_id, wallet]))
    h.accumulated_wei = int(chain.call("StakeToken", "accumulated", [h.stake_id, wallet]))


def chain_error_text(exc: ChainError) -> str:
    if isinstance(exc, ChainUnavailable):
        return f"The chain is not reachable right now ({exc}). Claimable revenue and claims are unavailable."
    return f"Could not read StakeToken ({exc}). Claimable revenue and claims are unavailable."


def wallet_stakes(*, wallet: str, read_chain: bool = True) -> tuple[list[StakeHolding], str]:
    """(holdings of `wallet` (checksummed), newest task first; chain error text or "").

    Two queries (allocations with task and finalization, payout events) plus, per open stake, three
    `StakeToken` reads. Raises nothing for chain trouble: it is reported in the error text.
    """
    if not wallet:
        return [], ""
    allocations = list(
        StakeAllocation.objects.filter(holder__iexact=wallet)
        .select_related("task", "task__finalization")
        .order_by("-task__created_at", "-task_id")
    )
    holdings = []
    for a in allocations:
        fin = getattr(a.task, "finalization", None)
        is_open = a.task.chain_task_id is not None and fin is not None and fin.settlement in SETTLED
        holdings.append(
            StakeHolding(
                allocation=a,
                stake_id=a.task.chain_task_id,
                open=is_open,
                shares_claimed=bool(a.claimed_tx_hash),
            )
        )
    paid = _payouts(wallet=wallet, stake_ids=[h.stake_id for h in holdings if h.stake_id is not None])
    error = ""
    for h in holdings:
        h.payouts = paid.get(h.stake_id, []) if h.stake_id is not None else []
        if read_chain and h.open and not error:
            try:
                _read_chain(h, wallet)
            except ChainError as exc:
                error = chain_error_text(exc)
    return holdings, error


def _tx(contract_name: str, function: str, args: list) -> dict:
    tx = chain.build_call(contract_name, function, args)
    data = tx["data"]
    return {
        "to": tx["to"],
        "data": data if isinstance(data, str) else "0x" + bytes(data).hex(),
        "value": "0x0",
        "chainId": settings.CHAIN_ID,
    }


def holding_calls(*, holding: StakeHolding, wallet: str) -> dict:
    """The transactions the holder's wallet may send for this stake, calldata built from the StakeToken ABI:
    {"claim": StakeToken.claim(id)} once the shares are claimed and revenue is claimable, {"claim_shares":
    StakeToken.claimShares(id, holder, shares, proof)} while they are not. Each is {to, data, value, chainId}.
    Empty before the stakes are open. Raises `ChainError` when StakeToken is not deployed on `CHAIN_ID`."""
    if not holding.open or holding.stake_id is None:
        return {}
    a = holding.allocation
    if not holding.shares_claimed:
        args = [holding.stake_id, wallet, a.shares, list(a.proof)]
        return {"claim_shares": _tx("StakeToken", "claimShares", args)}
    if holding.claimable_wei:
        return {"claim": _tx("StakeToken", "claim", [holding.stake_id])}
    return {}
