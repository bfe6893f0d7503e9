"""manage.py simulate_participants up to node registration (the SuperLink part is the platform's e2e)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tasks.models import Participation
from tests.tasks.factories import TaskFactory


def test_simulated_participants_join_with_own_wallets_and_files(deployment, live_server, tmp_path):
    task = TaskFactory(feature_shape=[64], label_set=list(range(10)), max_participants=3)
    with pytest.raises(CommandError, match="has not registered your node"):
        call_command(
            "simulate_participants",
            task=task.pk,
            honest=2,
            malicious=1,
            attack="sign_flip",
            site=live_server.url,
            workdir=str(tmp_path / "sim"),
            register_timeout=0.5,
        )
    joined = Participation.objects.filter(task=task)
    assert joined.count() == 3
    manifest = json.loads((tmp_path / "sim" / "participants.json").read_text())
    rows = manifest["participants"]
    assert [r["role"] for r in rows] == ["honest", "honest", "malicious"]
    assert rows[2]["attack"] == "sign_flip"
    assert {r["wallet"] for r in rows} == set(joined.values_list("wallet", flat=True))
    sizes = []
    for i in range(3):
        with np.load(tmp_path / "sim" / f"p{i}" / "data.npz") as d:
            assert d["x"].shape[1:] == (64,)
            sizes.append(len(d["y"]))
    assert sorted(p.data_summary["n"] for p in joined) == sorted(sizes)


def test_unknown_attack_is_refused(tmp_path):
    with pytest.raises(CommandError, match="unknown attack"):
        call_command(
            "simulate_participants", task=1, honest=1, malicious=1, attack="nope", workdir=str(tmp_path)
        )
