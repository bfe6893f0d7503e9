"""Participants dropping out mid-run, for real: 4 SuperNodes (warm start), a task needing 3, 5 rounds.

Participant 3's SuperNode is killed with SIGKILL once round 1 is ingested: the rounds it misses are recorded
against it ("no reply", score 0) and complete with the other three. Participant 2's is killed once round 3
is ingested: the next round has two answers where the task needs three, so it does not count, the run fails
and, with only two participants left online, the task fails with a reason that says so. Driven in-process
like test_platform_training (no Celery worker).

A kill can land while the next round is already under way (warm rounds take seconds), so a node may still
have answered the round right after its kill; from the round after that it must never count.
"""

from __future__ import annotations

import time

import pytest

from tasks.models import Task
from tests.e2e.platform_run import start_platform_run
from training import selectors
from training.models import Round, Update

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
NODES, NEEDED, ROUNDS = 4, 3, 5
FIRST, SECOND = 3, 2  # participant indexes, killed in this order


def test_dropouts_do_not_stall_rounds_and_too_few_fail_the_task_with_a_reason(
    tmp_path, settings, anvil, monkeypatch
):
    t0 = time.monotonic()
    # a round waits at most 30 s for replies / for enough nodes online (the SuperLink's own dead-node
    # detection, by heartbeats, takes up to 60 s); the follower asks Flower for the run's status every 5 s
    settings.TRAINING_STATUS_POLL_SECONDS = 5
    p = start_platform_run(
        tmp_path,
        settings,
        monkeypatch,
        anvil.url,
        nodes=NODES,
        rounds=ROUNDS,
        min_participants=NEEDED,
        round_timeout=30,
        heartbeat_timeout=60,
        isolation="warm",
    )
    task = p.task
    killed: dict[int, int] = {}  # node index -> last round ingested when it was killed

    def drop_participants():
        done = selectors.last_round_number(task=task)
        if FIRST not in killed and done >= 1:
            p.kill_node(FIRST)
            killed[FIRST] = done
        elif FIRST in killed and SECOND not in killed and done >= killed[FIRST] + 2:
            p.kill_node(SECOND)
            killed[SECOND] = done

    try:
        state = p.follow(timeout=600, on_step=drop_participants)
        elapsed = time.monotonic() - t0

        task.refresh_from_db()
        assert state == "failed" and task.status == Task.Status.FAILED, (state, task.status, task.status_note)
        assert "only 2 participant node(s) online, the task needs 3" in task.status_note, task.status_note
        rounds = list(Round.objects.filter(task=task).order_by("number"))
        assert len(rounds) >= 2 and len(rounds) < ROUNDS, [r.number for r in rounds]
        assert rounds[0].accepted_count == NODES
        assert set(killed) == {FIRST, SECOND}, killed
        for index, at in killed.items():
            later = [r for r in rounds if r.number > at + 1]
            updates = list(Update.objects.filter(round__in=later, node_id=str(p.node_ids[index])))
            assert not any(u.accepted for u in updates), [(u.round.number, u.reason) for u in updates]
            assert all(u.reason.startswith("no reply") and u.score_uint == 0 for u in updates), [
                u.reason for u in updates
            ]
        # the first full round without participant 3 was not stalled by it: the other three counted
        clean = next(r for r in rounds if r.number == killed[FIRST] + 2)
        accepted = set(Update.objects.filter(round=clean, accepted=True).values_list("node_id", flat=True))
        assert accepted == {str(p.node_ids[i]) for i in range(NODES) if i != FIRST}
        print(
            "TIMINGS",
            {
                "total_s": round(elapsed, 1),
                "killed_after": killed,
                "rounds": len(rounds),
                "note": task.status_note,
            },
        )
    finally:
        p.stop()
