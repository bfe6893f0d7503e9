"""What the demo story reads back from the platform's rows and the chain to report a step: rounds and their
commits, contributions and verdicts, bans, the settlement transactions, stake holders (all read-only)."""

from __future__ import annotations

from contracts import chain
from contracts.models import ChainTx
from tasks.models import Ban, Task
from training.models import Contribution, Round, StakeAllocation


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if address and len(address) > 12 else address


def eth(wei: int) -> str:
    return f"{int(wei) / 10**18:.4f} ETH"


def commits_confirmed(task: Task) -> bool:
    commits = ChainTx.objects.filter(function="commitRound", task_ref=str(task.pk))
    return commits.count() == task.rounds and all(c.status == ChainTx.Status.CONFIRMED for c in commits)


def rounds(task: Task) -> list[Round]:
    return list(Round.objects.filter(task=task).select_related("commit_tx").order_by("number"))


def round_lines(task: Task) -> list[str]:
    out = []
    for r in rounds(task):
        tx = r.commit_tx
        out.append(
            f"round {r.number}: accuracy {r.accuracy:.3f}, {r.accepted_count} accepted / {r.rejected_count} "
            f"rejected, updates root {r.updates_root[:10]}…, commit tx {tx.tx_hash if tx else '-'}"
        )
    return out


def contributions(task: Task) -> list[Contribution]:
    return list(Contribution.objects.filter(task=task).order_by("-share_bps", "wallet"))


def contribution_lines(task: Task) -> list[str]:
    out = []
    for c in contributions(task):
        scores = ", ".join(
            f"{float(v):+.3f}" for _, v in sorted(c.per_round.items(), key=lambda kv: int(kv[0]))
        )
        verdict = "MALICIOUS" if c.malicious else "honest"
        out.append(
            f"{short(c.wallet)}: Shapley per round [{scores}], {c.flagged_rounds} round(s) flagged, {verdict}, "
            f"share {c.share_bps / 100:.2f}%"
        )
    for ban in bans(task):
        out.append(f"banned {ban_subject(ban)}: {ban.reason}")
    return out


def bans(task: Task) -> list[Ban]:
    return list(Ban.objects.filter(task=task).select_related("identity", "ban_tx").order_by("pk"))


def ban_subject(ban: Ban) -> str:
    wallets = [
        c.wallet for c in Contribution.objects.filter(task=ban.task, participation__identity=ban.identity)
    ]
    return ", ".join(short(w) for w in wallets) or str(ban.identity)


def ban_why(ban: Ban) -> str:
    """The ban's reason and, from its evidence, the signals per round (e.g. "r1 flipped, r2 flipped")."""
    per_round = []
    for entry in (ban.evidence or {}).get("rounds", []):
        signals = [s.get("signal", "") for s in entry.get("signals", []) if isinstance(s, dict)]
        rejected = f"rejected: {entry.get('rejected')}" if "rejected" in entry else "flagged"
        what = ", ".join(x for x in signals if x) or rejected
        per_round.append(f"round {entry.get('round', '?')}: {what}")
    return ban.reason + (f" ({'; '.join(per_round)})" if per_round else "")


def settlement_txs(task: Task) -> list[ChainTx]:
    return list(
        ChainTx.objects.filter(task_ref=str(task.pk), function__in=("mint", "finalize")).order_by("pk")
    )


def settlement_lines(task: Task) -> list[str]:
    out = []
    for tx in settlement_txs(task):
        name = "ModelNFT.mint" if tx.function == "mint" else "TaskRegistry.finalize"
        out.append(f"{name}: tx {tx.tx_hash} ({tx.gas_used:,} gas)")
    token = int(task.chain_task_id)
    owner = chain.call("ModelNFT", "ownerOf", [token])
    deposited = int(chain.call("StakeToken", "totalDeposited", [token]))
    out.append(f"NFT #{token} owner {owner}; stake pool holds {eth(deposited)} (the reward pool)")
    holders = allocations(task)
    out.append(
        f"{len(holders)} stake holders: "
        + ", ".join(f"{short(a.holder)} {a.shares / 100:.2f}%" for a in holders)
    )
    return out


def allocations(task: Task) -> list[StakeAllocation]:
    return list(StakeAllocation.objects.filter(task=task).order_by("-shares", "holder"))


def platform_gas(task: Task) -> list[tuple[str, int, int]]:
    """[(contract.function, transactions, gas used)] of the platform's confirmed ledger rows for `task`, in the
    order they were first sent."""
    rows: dict[str, list[int]] = {}
    for tx in ChainTx.objects.filter(task_ref=str(task.pk), status=ChainTx.Status.CONFIRMED).order_by("pk"):
        entry = rows.setdefault(f"{tx.contract_name}.{tx.function}", [0, 0])
        entry[0] += 1
        entry[1] += int(tx.gas_used or 0)
    return [(name, n, gas) for name, (n, gas) in rows.items()]
