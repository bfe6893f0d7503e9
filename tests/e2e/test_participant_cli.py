"""The participant CLI as real processes (`python -m training.client`) against a live site."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.models import Participation
from tests.tasks.factories import REGISTRY, TaskFactory, npz_bytes

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # runs without Django
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "training.client", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(home.parent),
    )


def test_keygen_login_check_join_status(live_server, transactional_db, settings, tmp_path):
    from contracts.models import Deployment

    Deployment.objects.create(chain_id=settings.CHAIN_ID, name="TaskRegistry", address=REGISTRY)
    task = TaskFactory()
    data = tmp_path / "mine.npz"
    data.write_bytes(npz_bytes(n=30))
    home = tmp_path / "home"

    r = cli(home, "keygen")
    assert r.returncode == 0, r.stderr
    r = cli(home, "login", "--site", live_server.url, "--key", str(home / "wallet.key"))
    assert r.returncode == 0, r.stderr
    address = json.loads((home / "config.json").read_text())["address"]
    r = cli(home, "check", "--task", str(task.pk), "--data", str(data))
    assert r.returncode == 0 and r.stdout.startswith("OK"), r.stdout + r.stderr
    r = cli(home, "join", "--task", str(task.pk), "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert Participation.objects.get(task=task).wallet == address
    r = cli(home, "join", "--task", str(task.pk), "--data", str(data))
    assert r.returncode == 3 and "already_joined" in r.stderr
    r = cli(home, "status")
    assert r.returncode == 0 and f"task {task.pk}" in r.stdout and "joined" in r.stdout
    # the CLI never imported Django
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, training.client.cli, training.client.api; print('django' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.stdout.strip() == "False"
