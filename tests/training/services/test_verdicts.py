"""Verdicts at the end of training: who is malicious (banned with evidence, no stake) and everyone's share."""

from __future__ import annotations

import pytest

from contracts.models import ChainTx
from tasks.models import Ban, Task
from tests.training.factories import RoundFactory, RunFactory, UpdateFactory
from tests.training.services.conftest import TaskFactory, account, participate
from training.contribution import TOTAL_SHARES
from training.models import Contribution
from training.services import final_steps, verdicts

pytestmark = pytest.mark.django_db

OPPOSED = {"signal": "opposed", "value": -0.8, "threshold": 0.0, "counts": True, "detail": "cosine -0.8"}
COPY = {"signal": "copy_of_other", "value": 0.0, "threshold": 1e-6, "counts": False, "detail": "same as 11"}
# per participant, per round: (accepted, score, reason, flags)
ROUNDS = {
    0: [(True, 0.3, "", []), (True, 0.2, "", []), (True, 0.1, "", [])],  # honest
    1: [(True, 0.2, "", []), (False, 0.0, "no reply: timed out", []), (True, 0.1, "", [OPPOSED])],  # 1 of 2
    2: [(True, -0.1, "", [OPPOSED]), (True, -0.2, "", [OPPOSED]), (True, 0.05, "", [])],  # 2 of 3
    3: [(False, 0.0, "x contains NaN or infinite values", [])] * 2 + [(True, 0.1, "", [])],  # invalid 2 of 3
    4: [(True, 0.1, "", [COPY])] * 3,  # evidence that does not count
}


@pytest.fixture
def judged_task(fake_deployment):
    task = TaskFactory(rounds=3, status=Task.Status.FINALIZING, max_participants=5, creator_share_bps=1000)
    parts = [participate(task, account(i)) for i in ROUNDS]
    run = RunFactory(task=task)
    for number in (1, 2, 3):
        rnd = RoundFactory(task=task, run=run, number=number)
        for i, part in enumerate(parts):
            accepted, score, reason, flags = ROUNDS[i][number - 1]
            UpdateFactory(
                round=rnd,
                participation=part,
                node_id=str(10 + i),
                accepted=accepted,
                score=score,
                reason=reason,
                flags=flags,
            )
    final_steps.contributions_record(task=task)
    return task, parts


def test_flagged_in_half_the_answered_rounds_is_malicious_banned_with_evidence_and_unpaid(judged_task):
    # given
    task, parts = judged_task
    # when: the step runs twice (a redelivered job)
    verdicts.verdicts_and_shares(task=task)
    verdicts.verdicts_and_shares(task=task)
    # then: 2 and 3 are malicious; 1 (flagged in 1 of the 2 rounds it answered) and 4 (evidence only) are not
    by_wallet = {c.wallet: c for c in Contribution.objects.filter(task=task)}
    judged = {i: by_wallet[p.wallet].malicious for i, p in enumerate(parts)}
    assert judged == {0: False, 1: False, 2: True, 3: True, 4: False}
    # and: one ban each, by identity, for this task, with the evidence and its hash sent on chain
    bans = Ban.objects.filter(task=task)
    assert bans.count() == 2
    ban = bans.get(identity=parts[2].identity)
    assert "flagged in 2 of 3 rounds (opposed)" in ban.reason
    assert [r["round"] for r in ban.evidence["rounds"]] == [1, 2]
    assert ban.evidence["rounds"][0]["signals"][0]["threshold"] == 0.0
    assert ban.evidence["rounds"][0]["update_sha256"]
    assert "2 invalid update(s)" in bans.get(identity=parts[3].identity).reason
    assert ChainTx.objects.filter(function="ban").count() == 2
    # and: shares sum to the total, the creator keeps 10%, the malicious get nothing
    shares = {i: by_wallet[p.wallet].share_bps for i, p in enumerate(parts)}
    assert shares[2] == shares[3] == 0
    assert sum(shares.values()) + 1000 == TOTAL_SHARES
    assert shares[0] > shares[4] > 0


def test_task_page_explains_every_share_and_verdict(judged_task, client):
    # given a finalized task
    task, parts = judged_task
    verdicts.verdicts_and_shares(task=task)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.COMPLETED)
    # when
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    # then
    assert "Contributions and stakes" in page
    assert "Judged malicious: flagged in 2 of 3 rounds (threshold 50%); no stake, banned." in page
    assert "round 1: rejected — x contains NaN or infinite values (0)" in page
    assert "round 3: +0.1000 (flagged: opposed)" in page  # participant 1's one flagged round
    assert "Flagged in 1 round(s), below the threshold: paid by contribution." in page
