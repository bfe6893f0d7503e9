"""The task page's training section, read side: participants' states in words, replies from nodes that are no
participant, failures in plain language, and the accuracy/loss chart as inline SVG."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from tasks.models import Participation, Task
from training.models import Round, Run, Update
from training.selectors import ParticipantState, participant_states

SUPERLINK_NODE_ID = "1"  # flwr's SUPERLINK_NODE_ID: sender of the replies the SuperLink makes up


@dataclass
class OtherNode:
    """Updates of a node that maps to no participant of the task (counted in the rounds, not in anyone's row)."""

    node_id: str
    rejected: int = 0
    accepted: int = 0
    last_reason: str = ""

    @property
    def label(self) -> str:
        if self.node_id == SUPERLINK_NODE_ID:
            return "The SuperLink itself (error replies it made for nodes that did not answer)"
        return f"Node {self.node_id} (not a participant of this task)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def participant_words(state: ParticipantState, task_status: str) -> str:
    """A participant's state in words for the task page, given the task's status (a `Task.Status` value)."""
    S = Task.Status
    part = state.participation
    if part.status in (Participation.Status.EXCLUDED, Participation.Status.WITHDRAWN):
        note = f": {part.status_note}" if part.status_note else ""
        return f"{part.get_status_display()}{note}"
    acc, rej = state.accepted, state.rejected
    counts = f"{_plural(acc, 'update')} accepted, {rej} rejected"
    if task_status in (S.FINALIZING, S.COMPLETED):
        if acc:
            return f"Finished training: {acc} of {_plural(acc + rej, 'update')} accepted"
        if rej:
            return f"Took part, but all {_plural(rej, 'update')} were rejected: no stake"
        return "Sent no update during training"
    if task_status == S.FAILED:
        return (
            f"Trained until the task failed: {counts}"
            if acc or rej
            else "Sent no update before the task failed"
        )
    if task_status == S.CANCELLED:
        return "Joined; the task was cancelled"
    if task_status == S.TRAINING and (acc or rej):
        return f"Training: {counts} so far"
    words = {
        "node registered": "node registered, waiting for the first round"
        if task_status == S.TRAINING
        else "node registered, waiting for training to start",
        "node key belongs to another wallet": "node key belongs to another wallet: it cannot train",
        "node registration failed": "node registration failed"
        + (f": {state.registration.error}" if state.registration and state.registration.error else ""),
    }
    return "Joined; " + words.get(state.state, "registering the node")


def other_nodes(*, task: Task) -> list[OtherNode]:
    """Nodes whose updates were recorded in the task's rounds but belong to no participant (unknown nodes)."""
    nodes: dict[str, OtherNode] = {}
    rows = (
        Update.objects.filter(round__task=task, participation__isnull=True)
        .order_by("round__number", "node_id")
        .values_list("node_id", "accepted", "reason")
    )
    for node_id, accepted, reason in rows:
        node = nodes.setdefault(node_id, OtherNode(node_id))
        if accepted:
            node.accepted += 1
        else:
            node.rejected += 1
            node.last_reason = reason
    return list(nodes.values())


def task_participants_page(*, task: Task) -> dict:
    """The task page's participant table: one row per participant with its state in words, the nodes that are
    no participant, and totals that equal the sums of the round table's Accepted and Rejected columns.

    Returns {"rows": [(ParticipantState, words)], "other_nodes": [OtherNode], "totals": {"accepted", "rejected"}}.
    """
    states = participant_states(task=task)
    others = other_nodes(task=task)
    everyone = [*states, *others]
    return {
        "rows": [(s, participant_words(s, task.status)) for s in states],
        "other_nodes": others,
        "totals": {
            "accepted": sum(x.accepted for x in everyone),
            "rejected": sum(x.rejected for x in everyone),
        },
    }


_TOO_FEW_ONLINE = re.compile(
    r"Training stopped after round (\d+) of (\d+): only (\d+) participant node\(s\) online, the task needs (\d+)"
)
_COMMIT_FAILED = re.compile(r"commitRound of round (\d+) failed on chain")
_GAVE_UP = re.compile(r"Training failed (\d+) times; last: (.*)", re.DOTALL)
_MARKED = re.compile(r"Marked failed(?: by (\S+))?: (.*)", re.DOTALL)


def _run_failure_words(error: str) -> str:
    """Why one Flower run stopped, in words, from `Run.error` as the follower writes it."""
    if "stopped responding" in error:
        return "the training server stopped responding"
    if "lost Flower run" in error:
        return "the training server restarted and lost the run"
    if error.startswith("flwr run failed"):
        return "the training run could not be started"
    if "participant(s) answered" in error or "participant nodes are online" in error:
        return "too few participants' computers answered"
    return "the training run stopped with an error"


def failure_explanation(*, task: Task) -> dict | None:
    """Why a failed task failed, in plain language, for people who do not read tracebacks.

    Returns None unless the task is failed; else {"summary": one or two sentences, "detail": the raw technical
    text (`Task.status_note` and the last run's error), to show folded away}.
    """
    if task.status != Task.Status.FAILED:
        return None
    note = task.status_note or ""
    run = Run.objects.filter(task=task).order_by("-attempt").first()
    detail = "\n\n".join(t for t in (note, run.error if run and run.error not in note else "") if t)
    done = Round.objects.filter(task=task).count()
    if m := _TOO_FEW_ONLINE.search(note):
        after, total, online, needed = m.groups()
        summary = (
            f"Training stopped after round {after} of {total} because too few participants were still online: "
            f"{online} of the {needed} needed. Each participant's computer (its SuperNode) has to keep running "
            "until the last round."
        )
    elif m := _COMMIT_FAILED.search(note):
        summary = (
            f"Round {m.group(1)} could not be recorded on the blockchain, so the training could not be "
            "completed: the task's record would have a gap."
        )
    elif m := _GAVE_UP.search(note):
        summary = (
            f"The training run stopped {m.group(1)} times in a row and the platform gave up after round {done} "
            f"of {task.rounds}; the last time, {_run_failure_words(m.group(2))}."
        )
    elif m := _MARKED.search(note):
        who = "an administrator" + (f" ({m.group(1)})" if m.group(1) else "")
        summary = f"This task was stopped by {who}. Reason given: {m.group(2).strip().rstrip('.')}."
    else:
        summary = f"Training could not be completed (it stopped after round {done} of {task.rounds})."
    return {"summary": summary, "detail": detail}


def metrics_chart_svg(rounds: list[Round], width: int = 560, height: int = 220) -> str:
    """Accuracy (0–1, left axis) and loss (scaled to its max, right axis) per round as inline SVG.

    The legend sits above the plot area, so it never covers the lines.
    """
    points = [(r.number, r.accuracy, r.loss) for r in rounds if r.accuracy is not None]
    if not points:
        return ""
    pad_l, pad_r, pad_t, pad_b = 40, 40, 30, 28
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    first, last = points[0][0], points[-1][0]
    span = max(1, last - first)
    max_loss = max((p[2] or 0.0) for p in points) or 1.0

    def x(n: int) -> float:
        return pad_l + (n - first) / span * w if len(points) > 1 else pad_l + w / 2

    def y(v: float) -> float:
        return pad_t + (1 - max(0.0, min(1.0, v))) * h

    acc = " ".join(f"{x(n):.1f},{y(a):.1f}" for n, a, _ in points)
    loss = " ".join(f"{x(n):.1f},{y((lo or 0) / max_loss):.1f}" for n, _, lo in points)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Accuracy and loss per round">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        yy = y(frac)
        parts.append(f'<line x1="{pad_l}" y1="{yy:.1f}" x2="{pad_l + w}" y2="{yy:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{pad_l - 4}" y="{yy + 4:.1f}" font-size="10" text-anchor="end">{frac:.1f}</text>'
        )
        parts.append(
            f'<text x="{pad_l + w + 4}" y="{yy + 4:.1f}" font-size="10">{frac * max_loss:.2f}</text>'
        )
    for n, a, lo in points:
        parts.append(
            f'<text x="{x(n):.1f}" y="{height - 10}" font-size="10" text-anchor="middle">{n}</text>'
            f'<circle cx="{x(n):.1f}" cy="{y(a):.1f}" r="3" fill="#1565c0">'
            f"<title>round {n}: accuracy {a:.4f}, loss {escape(str(lo))}</title></circle>"
        )
    parts.append(f'<polyline points="{acc}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    parts.append(
        f'<polyline points="{loss}" fill="none" stroke="#c62828" stroke-width="2" stroke-dasharray="4 3"/>'
    )
    legend_y = pad_t - 12  # above the plot's top edge
    parts.append(
        f'<g class="legend" font-size="11">'
        f'<line x1="{pad_l}" y1="{legend_y - 4}" x2="{pad_l + 18}" y2="{legend_y - 4}" stroke="#1565c0" '
        f'stroke-width="2"/><text x="{pad_l + 22}" y="{legend_y}" fill="#1565c0">accuracy (left axis)</text>'
        f'<line x1="{pad_l + 150}" y1="{legend_y - 4}" x2="{pad_l + 168}" y2="{legend_y - 4}" stroke="#c62828" '
        f'stroke-width="2" stroke-dasharray="4 3"/>'
        f'<text x="{pad_l + 172}" y="{legend_y}" fill="#c62828">loss (right axis)</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)


def contributions_page(*, task: Task) -> list[dict]:
    """The task's contributions after finalization, with "why this share" per participant: its contribution in
    every round (and why a round counted 0), the verdict and the evidence against it."""
    from training.models import Contribution

    rows = []
    updates = Update.objects.filter(round__task=task).select_related("round")
    by_wallet: dict[str, dict[int, Update]] = {}
    for u in updates:
        by_wallet.setdefault(u.wallet, {})[u.round.number] = u
    for c in Contribution.objects.filter(task=task).order_by("-share_bps", "-cumulative", "wallet"):
        mine = by_wallet.get(c.wallet, {})
        why = []
        for number in range(1, int(task.rounds) + 1):
            u = mine.get(number)
            value = float(c.per_round.get(str(number), 0.0))
            if u is None:
                why.append(f"round {number}: no update (0)")
            elif not u.accepted:
                why.append(f"round {number}: rejected — {u.reason} (0)")
            else:
                signals = ", ".join(f["signal"] for f in u.flags or [] if f.get("counts"))
                why.append(f"round {number}: {value:+.4f}" + (f" (flagged: {signals})" if signals else ""))
        rows.append(
            {
                "wallet": c.wallet,
                "cumulative": c.cumulative,
                "share_bps": c.share_bps,
                "share_percent": (c.share_bps or 0) / 100,
                "malicious": c.malicious,
                "verdict": _verdict_words(c),
                "why": why,
            }
        )
    return rows


def _verdict_words(c) -> str:
    if c.malicious:
        ev = c.evidence or {}
        decisive = f", {ev['rounds_decisive']} with a decisive signal" if ev.get("rounds_decisive") else ""
        return (
            f"Judged malicious: flagged in {ev.get('rounds_flagged')} of {ev.get('rounds_answered')} rounds "
            f"(threshold {int(float(ev.get('threshold', 0.5)) * 100)}%{decisive}); no stake, banned."
        )
    if c.flagged_rounds:
        return f"Flagged in {c.flagged_rounds} round(s), below the threshold: paid by contribution."
    return "No signal against it."


_READ = object()  # settlement_page's `fin` not passed: read it


def settlement_page(*, task: Task, fin=_READ, allocations: list | None = None) -> dict | None:
    """The escrow's settlement in words for the task page: the model NFT, the stake pool and the refund
    (None before anything is settled or under way). A caller that already read the task's Finalization (or
    None) and its StakeAllocation rows passes them (`fin`, `allocations`) instead of three more queries."""
    from training.models import Finalization, StakeAllocation

    if fin is _READ:
        fin = Finalization.objects.filter(task=task).first()
    if allocations is None:
        allocs = StakeAllocation.objects.filter(task=task)
        claimed, holders = allocs.exclude(claimed_tx_hash="").count(), allocs.count
    else:
        claimed, holders = sum(1 for a in allocations if a.claimed_tx_hash), allocations.__len__
    wei = 10**18
    if fin is None or not (fin.settlement or fin.stakes_root):
        if task.status == Task.Status.FAILED and task.chain_task_id is not None:
            return {"state": "pending", "text": "Settling the escrow on chain…"}
        return None
    if not fin.settlement:
        return {"state": "pending", "text": "Settling the escrow on chain…", "root": fin.stakes_root}
    paid, refunded = int(fin.paid_to_stakes_wei or 0), int(fin.refunded_wei or 0)
    if fin.settlement == "finalize":
        text = (
            f"Model NFT #{task.chain_task_id} minted to the creator; the reward pool ({paid / wei:g} ETH) moved to "
            "the model's stake pool, shared by the holders below."
        )
    elif fin.rounds_paid:
        text = (
            f"Training failed after {fin.rounds_paid} of {task.rounds} committed round(s): {paid / wei:g} ETH paid "
            f"to the stake pool of those rounds' contributors, {refunded / wei:g} ETH refunded to the creator."
        )
    else:
        text = (
            f"Training failed before any round was committed: {refunded / wei:g} ETH refunded to the creator."
        )
    return {
        "state": fin.settlement,
        "text": text,
        "tx_hash": fin.settled_tx_hash,
        "root": fin.stakes_root,
        "holders": holders(),
        "claimed": claimed,
    }


def bans_page(*, task: Task) -> list[dict]:
    """The bans this task's verdicts made, for the task page: [{wallets, reason, until, evidence_hash,
    tx_hash, tx_status, lifted}] (wallets of the banned person that took part in the task; newest first)."""
    from tasks.models import Ban

    bans = list(Ban.objects.filter(task=task).select_related("ban_tx"))
    wallets: dict[int, list[str]] = {}
    for p in Participation.objects.filter(task=task).select_related("identity"):
        root = p.identity.merged_into_id or p.identity_id
        wallets.setdefault(root, []).append(p.wallet)
    return [
        {
            "wallets": wallets.get(b.identity_id, []),
            "reason": b.reason,
            "until": f"until {b.expires_at:%Y-%m-%d %H:%M} UTC" if b.expires_at else "permanently",
            "evidence_hash": b.evidence_hash,
            "tx_hash": b.ban_tx.tx_hash if b.ban_tx else "",
            "tx_status": b.ban_tx.get_status_display() if b.ban_tx else "",
            "lifted": b.lift_reason if b.lifted_at else "",
        }
        for b in bans
    ]
