"""The task page after training: participants' states in words, tables that agree, failures explained."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tasks.models import Task
from tests.tasks.factories import TaskFactory
from tests.training.services.conftest import account, participate
from training.models import Round, Run, Update

pytestmark = pytest.mark.django_db
S = Task.Status


def _round(task, run, number, updates):
    """A stored round with its updates: (participation or None, node_id, accepted, reason)."""
    accepted = sum(1 for _, _, ok, _ in updates if ok)
    rnd = Round.objects.create(
        task=task,
        run=run,
        number=number,
        global_sha256="ab" * 32,
        accuracy=0.5 + number / 10,
        loss=1.0 / number,
        accepted_count=accepted,
        rejected_count=len(updates) - accepted,
        updates_root="0x" + "00" * 32,
    )
    for part, node_id, ok, reason in updates:
        Update.objects.create(
            round=rnd,
            node_id=str(node_id),
            participation=part,
            wallet=part.wallet if part else "",
            accepted=ok,
            reason=reason,
        )
    return rnd


def _trained(status, *, note="", run_error="", unknown_node_in_round=None):
    """A 3-round task with two participants, both accepted every round; optionally an unknown node's reply."""
    task = TaskFactory(rounds=3, min_participants=2, status=status, status_note=note)
    parts = [participate(task, account(i), registered_node=10 + i) for i in range(2)]
    run = Run.objects.create(
        task=task, status=Run.Status.FAILED if run_error else Run.Status.COMPLETED, error=run_error
    )
    for number in (1, 2, 3):
        updates = [(p, 10 + i, True, "") for i, p in enumerate(parts)]
        if number == unknown_node_in_round:
            updates.append((None, 99, False, "unknown node"))
        _round(task, run, number, updates)
    return task, parts


def _cells(html: str, table_class: str) -> list[list[str]]:
    body = html.split(f'<table class="{table_class}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.DOTALL)]
        for r in rows
    ]


def test_participants_state_after_training_is_in_words(client):
    # given: training finished (all rounds committed), both participants' updates accepted in every round
    task, parts = _trained(S.COMPLETED)
    # when
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    # then: each participant's state says they finished training, not that they (only) joined
    rows = {r[0]: r for r in _cells(html, "participants")[1:] if r[0].startswith("0x")}
    for p in parts:
        state = rows[p.wallet][2]
        assert state == "Finished training: 3 of 3 updates accepted", state
        assert "Joined" not in state


def test_participant_states_follow_the_task(client):
    task = TaskFactory(status=S.RECRUITING)
    participate(task, account(5), registered_node=25)
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Joined; node registered, waiting for training to start" in html
    # a failed task: what each did before it failed
    task, _ = _trained(S.FAILED, note="Training failed 3 times; last: boom")
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Trained until the task failed: 3 updates accepted, 0 rejected" in html


def test_round_and_participant_tables_agree_on_rejected_updates(client):
    # given: in round 3 a node that is no participant sent a reply (rejected: unknown node)
    task, _ = _trained(S.FAILED, note="Training failed 3 times; last: boom", unknown_node_in_round=3)
    # when
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    # then: the participant table shows that node, and its totals equal the round table's column sums
    rounds = Round.objects.filter(task=task)
    assert sum(r.rejected_count for r in rounds) == 1
    table = _cells(html, "participants")
    other = [r for r in table if r[0].startswith("Node 99")]
    assert other and other[0][5] == "1" and other[0][6] == "unknown node"
    footer = table[-1]
    assert footer[0].startswith("All rounds")
    assert footer[1:3] == [
        str(sum(r.accepted_count for r in rounds)),
        str(sum(r.rejected_count for r in rounds)),
    ]
    body_rows = table[1:-1]
    assert sum(int(r[5]) for r in body_rows) == 1 and sum(int(r[4]) for r in body_rows) == 6


def test_failed_task_is_explained_in_plain_language_with_the_detail_folded(client):
    # given: a task failed because participants' nodes went offline (the follower's note, verbatim)
    note = (
        "Training stopped after round 3 of 5: only 2 participant node(s) online, the task needs 3. "
        "(Flower run ended finished:failed after round 3 of 5: round 4: only 2 participant(s) answered, "
        "the task needs 3 (0xAbC: no reply: Error(code=0, reason='node unavailable')))"
    )
    task, _ = _trained(S.FAILED, note=note, run_error="Flower run ended finished:failed after round 3 of 5")
    # when
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    # then: a plain sentence first; the raw text only inside a <details> element
    assert (
        "Training stopped after round 3 of 5 because too few participants were still online: 2 of the 3 needed."
        in html
    )
    details = re.search(r"<details class=\"technical\">(.*?)</details>", html, re.DOTALL)
    assert details and "node unavailable" in details.group(1)
    outside = html.replace(details.group(0), "")
    assert "node unavailable" not in outside and "finished:failed" not in outside


@pytest.mark.parametrize(
    ("note", "plain"),
    [
        (
            "commitRound of round 2 failed on chain: execution reverted",
            "Round 2 could not be recorded on the blockchain",
        ),
        (
            "Training failed 3 times; last: ServerApp stopped responding (heartbeat 70s old) after round 1",
            "the training server stopped responding",
        ),
        ("Marked failed by admin: stopped by an admin", "This task was stopped by an administrator (admin)"),
        ("something nobody foresaw", "Training could not be completed (it stopped after round 3 of 3)"),
    ],
)
def test_failure_kinds_have_plain_explanations(client, note, plain):
    task, _ = _trained(S.FAILED, note=note)
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert plain in html
    assert html.count(note) == 1 and f"<pre>{note}" in html  # the raw note only in the folded detail


def test_licence_heading_only_with_licence_text(client):
    bare = TaskFactory(licence_terms="")
    assert ">Licence</h3>" not in client.get(reverse("tasks:detail", args=[bare.pk])).content.decode()
    licensed = TaskFactory(licence_terms="CC-BY-4.0")
    html = client.get(reverse("tasks:detail", args=[licensed.pk])).content.decode()
    assert ">Licence</h3>" in html and "CC-BY-4.0" in html


def test_chart_legend_sits_above_the_plot_area():
    from training.task_page import metrics_chart_svg

    task, _ = _trained(S.COMPLETED)
    svg = metrics_chart_svg(list(Round.objects.filter(task=task).order_by("number")))
    plot_top = float(re.search(r'<rect x="[\d.]+" y="([\d.]+)"', svg).group(1))
    legend = svg.split('<g class="legend"', 1)[1].split("</g>", 1)[0]
    ys = [float(y) for y in re.findall(r'\by2?="([\d.]+)"', legend)]
    assert ys and max(ys) < plot_top  # no legend text or swatch inside the plot, where the lines run


def test_bans_of_the_task_are_listed_with_evidence_hash_and_transaction(client):
    from tests.contracts.factories import ChainTxFactory
    from tests.tasks.factories import BanFactory

    # given: a participant banned by the task's verdict, its ban sent on chain
    task = TaskFactory(status=S.COMPLETED)
    bad = participate(task, account(7))
    tx = ChainTxFactory(
        status="confirmed", tx_hash="0x" + "ab" * 32, function="ban", contract_name="IdentityRegistry"
    )
    ban = BanFactory(identity=bad.identity, task=task, reason="Judged malicious in task 1", evidence={"r": 1})
    ban.ban_tx = tx
    ban.save(update_fields=["ban_tx"])
    other = TaskFactory(status=S.COMPLETED)
    # when
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    # then: the ban with the wallet, reason, evidence hash and transaction; not on another task's page
    bans = html[html.index('<div id="bans">') :]
    assert bad.wallet in bans and "banned permanently" in bans and "Judged malicious in task 1" in bans
    assert ban.evidence_hash in bans and tx.tx_hash in bans and "(confirmed)" in bans
    assert 'id="bans"' not in client.get(reverse("tasks:detail", args=[other.pk])).content.decode()
