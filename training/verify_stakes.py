"""The end of the audit trail, after the rounds (`training.verify`): contributions -> shares -> stakes root
-> shares claimed -> revenue deposited -> payouts, from the stored records and the chain's events.

Read-only. Contributions are recomputed from the stored update records (each accepted update's score, the
value committed in its round's Merkle leaf as max(0, score) x 10^6; the valuation itself needs the update
arrays, which the platform does not keep); shares by `training.contribution.shares_bps` with the stored
verdicts; the stakes root by `training.stakes`; and each is compared with the stored rows and with the
TaskFinalized / TaskFailed, StakesOpened, SharesClaimed, RevenueDeposited, RevenueAllocated,
DividendClaimed and PayoutPushed events of the task (its stake id = its on-chain task id).
"""

from __future__ import annotations

from tasks.models import Task
from training.contribution import shares_bps
from training.models import Contribution, Finalization, StakeAllocation, Update
from training.stakes import stakes_tree

TOLERANCE = 1e-9


def _events(task: Task, events: list[dict]) -> dict[str, list[dict]]:
    """The task's settlement and stake events by name (`events` as `contracts.chain.get_logs` returns)."""
    wanted = int(task.chain_task_id)
    out: dict[str, list[dict]] = {}
    for e in events:
        args = e.get("args") or {}
        key = args.get("taskId", args.get("id"))
        if key is not None and int(key) == wanted:
            out.setdefault(e["event"], []).append(args)
    return out


def _check_contributions(task: Task, rounds: int) -> str:
    sums: dict[int, float] = {}
    rows = Update.objects.filter(round__task=task, round__number__lte=rounds, participation__isnull=False)
    for pid, score, accepted in rows.values_list("participation_id", "score", "accepted"):
        sums[pid] = sums.get(pid, 0.0) + (float(score) if accepted else 0.0)
    for c in Contribution.objects.filter(task=task):
        if abs(sums.get(c.participation_id, 0.0) - float(c.cumulative)) > TOLERANCE:
            return f"contribution of {c.wallet}: stored {c.cumulative} != recomputed {sums.get(c.participation_id, 0.0)}"
    return ""


def _check_shares(task: Task) -> tuple[str, str]:
    """(problem or "", recomputed root)."""
    contributions = list(Contribution.objects.filter(task=task))
    shares = shares_bps(
        {c.wallet: c.cumulative for c in contributions},
        creator=task.creator.username,
        creator_share_bps=int(task.creator_share_bps),
        excluded={c.wallet for c in contributions if c.malicious},
    )
    tree = stakes_tree(shares)
    stored = {a.holder.lower(): a.shares for a in StakeAllocation.objects.filter(task=task)}
    if stored != {leaf.holder.lower(): leaf.shares for leaf in tree.leaves}:
        return "stored stake allocations differ from the shares recomputed from the contributions", tree.root
    return "", tree.root


def _check_revenue(by_name: dict[str, list[dict]], leaves: dict[str, int]) -> tuple[str, str]:
    """(problem or "", summary line) for the stake pool's claims, deposits and payouts."""
    for c in by_name.get("SharesClaimed", []):
        if leaves.get(str(c["holder"]).lower()) != int(c["shares"]):
            return f"SharesClaimed by {c['holder']} ({c['shares']}) matches no leaf", ""
    deposited = sum(int(e["reward"]) for e in by_name.get("StakesOpened", []))
    deposited += sum(
        int(e["amount"]) for e in by_name.get("RevenueDeposited", []) + by_name.get("RevenueAllocated", [])
    )
    paid_to: dict[str, int] = {}
    for e in by_name.get("DividendClaimed", []) + by_name.get("PayoutPushed", []):
        who = str(e["account"]).lower()
        paid_to[who] = paid_to.get(who, 0) + int(e["amount"])
    for who, paid in paid_to.items():
        due = deposited * leaves.get(who, 0) // 10_000
        if paid > due:
            return (
                f"{who} was paid {paid} wei, more than its {leaves.get(who, 0)} shares of {deposited} wei",
                "",
            )
    claimed = len(by_name.get("SharesClaimed", []))
    return "", (
        f"stake pool: {claimed} of {len(leaves)} holder(s) claimed their shares; {deposited} wei deposited, "
        f"{sum(paid_to.values())} wei paid out"
    )


def verify_stakes(task: Task, events: list[dict]) -> tuple[str, list[str]]:
    """(first mismatch or "", OK lines) for the task's settlement; ("", []) when nothing is settled yet."""
    fin = Finalization.objects.filter(task=task).first()
    if fin is None or not fin.settlement:
        return "", []
    rounds = int(fin.rounds_paid if fin.rounds_paid is not None else task.rounds)
    problem = _check_contributions(task, rounds)
    if problem:
        return problem, []
    problem, root = _check_shares(task) if rounds else ("", "0x" + "00" * 32)
    if problem:
        return problem, []
    if root != fin.stakes_root and not (rounds == 0 and not fin.stakes_root):
        return f"stakes root: recomputed {root} != stored {fin.stakes_root}", []
    by_name = _events(task, events)
    settled = by_name.get("TaskFinalized" if fin.settlement == "finalize" else "TaskFailed", [])
    if not settled:
        return f"no {'TaskFinalized' if fin.settlement == 'finalize' else 'TaskFailed'} event on chain", []
    if str(settled[0]["stakesRoot"]).lower() != root.lower():
        return f"stakes root on chain {settled[0]['stakesRoot']} != recomputed {root}", []
    leaves = {a.holder.lower(): a.shares for a in StakeAllocation.objects.filter(task=task)}
    problem, summary = _check_revenue(by_name, leaves)
    if problem:
        return problem, []
    return "", [f"stakes: OK root {root} ({len(leaves)} holder(s), {rounds} round(s) paid)", summary]
