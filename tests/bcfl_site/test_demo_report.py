"""The demo story's reporting pieces (the story itself runs end to end in tests/e2e/test_demo_story.py)."""

import io

import pytest

from bcfl_site.demo import report
from bcfl_site.demo.narrator import Narrator, StoryError
from tests.tasks.factories import BanFactory, ParticipationFactory
from tests.training.factories import ContributionFactory


@pytest.mark.django_db
def test_ban_is_explained_with_its_signals_per_round_and_named_by_wallet():
    participation = ParticipationFactory()
    ContributionFactory(participation=participation, malicious=True)
    evidence = {
        "rounds": [
            {"round": 1, "signals": [{"signal": "opposed", "counts": True}]},
            {"round": 2, "rejected": "contains NaN or infinite values"},
            {"round": 3, "signals": [{"signal": "opposed"}, {"signal": "flipped"}]},
        ]
    }
    ban = BanFactory(
        identity=participation.identity,
        task=participation.task,
        reason="Judged malicious.",
        evidence=evidence,
    )

    assert report.ban_why(ban) == (
        "Judged malicious. (round 1: opposed; round 2: rejected: contains NaN or infinite values; "
        "round 3: opposed, flipped)"
    )
    assert report.ban_subject(ban) == report.short(participation.wallet)
    assert report.bans(participation.task) == [ban]


def test_narrator_numbers_steps_and_a_wait_that_never_happens_names_what_it_waited_for():
    out, ticks = io.StringIO(), []
    n = Narrator(out, total_steps=12, on_tick=lambda: ticks.append(1))
    n.step("Platform up")
    n.detail("a detail")
    assert n.wait_until("three polls", lambda: len(ticks) >= 3 and "ok", timeout=5, poll=0.01) == "ok"
    with pytest.raises(StoryError, match="waiting for the NFT to be indexed"):
        n.wait_until("the NFT to be indexed", lambda: None, timeout=0, poll=0)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[ 1/12]") and lines[0].endswith("Platform up")
    assert lines[1] == " " * 14 + "a detail"
    assert [name for name, _ in n.step_times] == ["Platform up"]
