"""The closing summary of the demo story: accuracy per round, shares per holder, bans and why, gas per step, the
pages to open and how to import a demo wallet into a browser wallet (lines of text)."""

from __future__ import annotations

from django.conf import settings

from bcfl_site.demo import report
from contracts import chain
from tasks.models import Task


def _roles(task: Task, result) -> dict[str, str]:
    roles = {p["wallet"].lower(): f"p{p['index']} {p['role']}" for p in result.participants}
    roles[task.creator.username.lower()] = "creator"
    return roles


def _gas_lines(task: Task, result) -> list[str]:
    rows = []
    receipt = chain.get_receipt(task.create_tx_hash) or {}
    rows.append(("creator", "TaskRegistry.createTask (+ reward)", int(receipt.get("gasUsed", 0))))
    for actor in result.actors.values():
        rows += [(tx.who, tx.what, tx.gas_used) for tx in actor.sent]
    out = [f"  {who:<14} {what:<38} {gas:>10,}" for who, what, gas in rows]
    for name, n, gas in report.platform_gas(task):
        out.append(f"  {'platform':<14} {f'{name} ×{n}':<38} {gas:>10,}")
    total = sum(g for *_, g in rows) + sum(g for *_, g in report.platform_gas(task))
    return [*out, f"  {'total':<14} {'':<38} {total:>10,}"]


def summary_lines(result, *, site: str) -> list[str]:
    task = Task.objects.select_related("creator").get(pk=result.task_id)
    token = result.token_id
    roles = _roles(task, result)
    lines = [
        "",
        f'=== Summary: task {task.pk} "{task.title}", {result.total_s:.0f} s ===',
        "Accuracy per round (validation set, 360 digits):",
    ]
    lines += [f"  round {r.number}: {r.accuracy:.3f}" for r in report.rounds(task)]
    paid = (result.payouts or {}).get("paid", {})
    lines.append("Shares per holder (of 10,000) and what the stake pool paid them:")
    for a in report.allocations(task):
        role = roles.get(a.holder.lower(), "")
        lines.append(
            f"  {a.holder} {role:<12} {a.shares:>5} ({a.shares / 100:5.2f}%)  paid {report.eth(paid.get(a.holder, 0))}"
        )
    malicious = [c for c in report.contributions(task) if c.malicious]
    lines.append(f"Unpaid (0 shares) and banned: {len(malicious)}")
    for ban in report.bans(task):
        lines.append(f"  {report.ban_subject(ban)}: {report.ban_why(ban)}")
    lines.append("Gas per step:")
    lines += _gas_lines(task, result)
    lines += [
        "Pages to open:",
        f"  task page        {site}/tasks/{task.pk}/",
        f"  model detail     {site}/marketplace/models/{token}/",
        f"  marketplace      {site}/marketplace/",
        f"  my stakes        {site}/stakes/   (sign in with the creator's wallet)",
        f"  system status    {site}/status/",
        "Demo wallets (anvil's public dev accounts; never use these keys on a real network):",
    ]
    for actor in result.actors.values():
        lines.append(f"  {actor.role:<14} {actor.address}  private key {actor.key}")
    lines += [
        "  Import one into MetaMask: Add network manually, RPC URL "
        f"{settings.CHAIN_RPC_URL}, chain ID {settings.CHAIN_ID}, currency ETH; then Import account, paste",
        "  the private key; on the site press Sign in with your wallet.",
        "  To buy a licence in the browser: import an account not listed above (e.g. anvil's #5), open the model",
        f"  detail page and press Buy licence; the NFT's new owner sells licences of model #{token}.",
    ]
    return lines
