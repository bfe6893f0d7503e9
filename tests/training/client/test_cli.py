"""The participant CLI against a live site: keygen, login, check, join, status, train's waiting, errors."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tasks.models import Participation
from training.client import api
from training.client.cli import Home, main
from training.client.wallet import load_wallet


class Run:
    def __init__(self, home: Path):
        self.home = home

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(["--home", str(self.home), *argv], out=out, err=err)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli(tmp_path):
    return Run(tmp_path / "home")


@pytest.fixture
def sent(monkeypatch):
    """Every (method, path, body) the client library sends."""
    bodies: list[tuple[str, str, bytes | None]] = []
    real = api.Client.request

    def spy(self, method, path, body=None, *, auth=False):
        bodies.append((method, path, None if body is None else json.dumps(body).encode()))
        return real(self, method, path, body, auth=auth)

    monkeypatch.setattr(api.Client, "request", spy)
    return bodies


@pytest.fixture
def logged_in(cli, live_server):
    code, out, err = cli("keygen")
    assert code == 0, err
    code, out, err = cli("login", "--site", live_server.url, "--key", str(cli.home / "wallet.key"))
    assert code == 0, err
    return cli


def test_keygen_creates_private_key_file(cli):
    code, out, _ = cli("keygen")
    assert code == 0
    key = cli.home / "wallet.key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert load_wallet(key).address in out
    code, _, err = cli("keygen")
    assert code == 1 and "already exists" in err


def test_login_stores_token(cli, live_server, sent):
    cli("keygen")
    wallet = load_wallet(cli.home / "wallet.key")
    code, out, err = cli("login", "--site", live_server.url, "--key", str(cli.home / "wallet.key"))
    assert code == 0, err
    assert wallet.address in out
    cfg = json.loads((cli.home / "config.json").read_text())
    assert cfg["token"] and cfg["address"] == wallet.address and cfg["site"] == live_server.url
    assert os.stat(cli.home / "config.json").st_mode & 0o777 == 0o600
    _assert_no_secret(sent, wallet.private_key)


def test_check_ok_and_mismatch(logged_in, recruiting_task, good_data, bad_data):
    code, out, _ = logged_in("check", "--task", str(recruiting_task.pk), "--data", str(good_data))
    assert code == 0 and out.startswith("OK:"), out
    # what joining commits to is shown before joining: the rule and the contribution measure in words
    assert f"Aggregation rule: {recruiting_task.aggregation_rule}." in out
    assert "Contribution measure (shapley): Each update's Shapley value" in out
    code, out, _ = logged_in("check", "--task", str(recruiting_task.pk), "--data", str(bad_data))
    assert code == 3
    assert "does not fit" in out
    assert "shape 4, but your data has 5" in out
    assert "labels 7" in out
    assert "at least 10 examples" in out


def test_check_unreadable_file(logged_in, recruiting_task, tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    code, out, _ = logged_in("check", "--task", str(recruiting_task.pk), "--data", str(tmp_path / "x.npz"))
    assert code == 3 and "cannot be used" in out and "Python objects" in out
    code, out, _ = logged_in("check", "--task", str(recruiting_task.pk), "--data", str(tmp_path / "none.npz"))
    assert code == 3 and "does not exist" in out


def test_join_happy_path_sends_only_summary(logged_in, recruiting_task, good_data, sent):
    code, out, err = logged_in("join", "--task", str(recruiting_task.pk), "--data", str(good_data))
    assert code == 0, err
    assert "Joined task" in out
    wallet = load_wallet(logged_in.home / "wallet.key")
    p = Participation.objects.get(task=recruiting_task)
    assert p.wallet == wallet.address
    assert p.data_summary["n"] == 30
    node_pub = (logged_in.home / "tasks" / str(recruiting_task.pk) / "node_key.pub").read_text().strip()
    assert p.node_public_key == node_pub
    node_priv = (logged_in.home / "tasks" / str(recruiting_task.pk) / "node_key").read_text()
    _assert_no_secret(sent, wallet.private_key, node_priv, good_data.read_bytes())
    join_bodies = [json.loads(b) for m, path, b in sent if path.endswith("/join/")]
    assert len(join_bodies) == 1
    assert set(join_bodies[0]) == {"participant", "node_public_key", "data_summary", "signature"}
    assert set(join_bodies[0]["data_summary"]) == {"feature_shape", "examples_per_label", "n"}


def test_join_refusal_is_printed(logged_in, recruiting_task, good_data):
    assert logged_in("join", "--task", str(recruiting_task.pk), "--data", str(good_data))[0] == 0
    code, out, err = logged_in("join", "--task", str(recruiting_task.pk), "--data", str(good_data))
    assert code == 3
    assert "refused" in err and "already joined" in err and "already_joined" in err


def test_join_mismatch_is_refused_locally(logged_in, recruiting_task, bad_data, sent):
    code, out, err = logged_in("join", "--task", str(recruiting_task.pk), "--data", str(bad_data))
    assert code == 3 and "does not fit" in err
    assert not [path for _, path, _ in sent if path.endswith("/join/")]


def test_status(logged_in, recruiting_task, good_data):
    code, out, _ = logged_in("status")
    assert code == 0 and "No participations" in out
    logged_in("join", "--task", str(recruiting_task.pk), "--data", str(good_data))
    code, out, _ = logged_in("status", "--task", str(recruiting_task.pk))
    assert code == 0
    assert f"task {recruiting_task.pk}" in out and "you joined" in out and "node not registered yet" in out


def test_train_gives_up_waiting_for_registration(logged_in, recruiting_task, good_data, tmp_path):
    logged_in("join", "--task", str(recruiting_task.pk), "--data", str(good_data))
    code, out, err = logged_in(
        "train",
        "--task",
        str(recruiting_task.pk),
        "--data",
        str(good_data),
        "--superlink",
        "127.0.0.1:1",
        "--root-cert",
        str(tmp_path / "ca.crt"),
        "--wait-timeout",
        "0.2",
        "--poll",
        "0.1",
    )
    assert code == 1 and "has not registered your node" in err


def test_errors_in_plain_words(cli, live_server, recruiting_task, good_data):
    code, _, err = cli("status")
    assert code == 1 and "login" in err
    cli("keygen")
    code, _, err = cli("login", "--site", "http://127.0.0.1:9", "--key", str(cli.home / "wallet.key"))
    assert code == 1 and "Cannot reach the site" in err
    code, _, err = cli("check", "--site", live_server.url, "--task", "999999", "--data", str(good_data))
    assert code == 1 and "does not exist" in err
    code, _, err = cli(
        "join", "--site", live_server.url, "--task", str(recruiting_task.pk), "--data", str(good_data)
    )
    assert code == 1 and "not logged in" in err


def test_home_node_key_is_per_task(tmp_path):
    home = Home(tmp_path)
    priv1, pub1 = home.node_key(1)
    priv2, pub2 = home.node_key(2)
    assert pub1 != pub2 and home.node_key(1)[1] == pub1
    assert os.stat(priv1).st_mode & 0o777 == 0o600


def _assert_no_secret(sent, *secrets):
    for secret in secrets:
        if isinstance(secret, str):
            candidates = {secret.encode(), secret.removeprefix("0x").encode()}
        else:
            candidates = {secret}
        for _method, path, body in sent:
            for c in candidates:
                assert c not in (body or b"") and c.decode(errors="ignore") not in path


def test_status_shows_detection_signals_and_verdict(logged_in, recruiting_task, good_data):
    """The platform's view of this participant's updates (signals with value and threshold) and verdict."""
    from tests.training.factories import ContributionFactory, RoundFactory, RunFactory, UpdateFactory

    logged_in("join", "--task", str(recruiting_task.pk), "--data", str(good_data))
    part = Participation.objects.get(task=recruiting_task)
    run = RunFactory(task=recruiting_task)
    flag = {"signal": "norm_outlier", "value": 41.5, "threshold": 4.0, "counts": True, "detail": "×median"}
    UpdateFactory(round=RoundFactory(run=run, number=1), participation=part, score=0.25, excluded="multikrum")
    UpdateFactory(round=RoundFactory(run=run, number=2), participation=part, score=-0.1, flags=[flag])
    code, out, _ = logged_in("status", "--task", str(recruiting_task.pk))
    assert code == 0, out
    assert "contribution so far 0.1500; 1 left out of the aggregate by the rule" in out
    assert "detection signals in 1 round(s): 2" in out
    assert "last: norm_outlier = 41.5 (threshold 4.0) (×median)" in out
    assert "verdict" not in out
    ContributionFactory(participation=part, malicious=True, share_bps=0)
    code, out, _ = logged_in("status", "--task", str(recruiting_task.pk))
    assert "judged malicious" in out


def test_defence_lines_share_after_finalization():
    state = {"updates_accepted": 3, "contribution": 1.25, "share_bps": 3250, "malicious": False}
    assert api.defence_lines(state) == ["contribution so far 1.2500", "share of the model: 32.50%"]
    assert api.defence_lines(None) == []
