"""The demo story with real processes, as `make demo` runs it, plus `simulate_participants` and `verify_task`.

anvil + deployed contracts; real Celery workers for the `chain` (concurrency 1) and `training` queues on Redis
db 14 and the pytest test DB; the SuperLink as `manage.py run_superlink`; the site is pytest-django's
live_server. A creator registers a digits task on chain with `manage.py create_task` (rounds 3, min participants 4); then
`manage.py simulate_participants --honest 3 --malicious 1 --attack nan` joins through the HTTP API and runs
real SuperNodes. The platform registers the nodes, starts the Flower run, ingests every round (3 accepted,
1 rejected for NaN) and commits each on chain; `manage.py verify_task` agrees with the chain.

Midway the training worker is killed with SIGKILL right after the first round is ingested (its follower job
dies unacknowledged: Redis would give it back only after an hour); celery beat's watchdog notices the run's
expired lease and a new worker's follower finishes the story, with one commit per round.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from eth_account import Account

from tests.anvil import DEV_KEYS, Anvil
from tests.workers import celery_producer_on, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/14"  # test_celery_roundtrip uses 15 (and flushes it)
ROUNDS, HONEST, MALICIOUS = 3, 3, 1
DEADLINE_S = 360


@pytest.fixture
def redis_broker():
    """This process's Celery producer (the live_server's joins enqueue jobs) sends to Redis db 14."""
    with celery_producer_on(BROKER) as client:
        yield client


class Procs:
    """Subprocesses started by this test, each in its own session (process group), all stopped in `finally`."""

    def __init__(self, logs: Path, env: dict[str, str]):
        self.logs, self.env, self.procs = logs, env, {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return f"--- {name} ---\n" + (path.read_text(errors="replace")[-tail:] if path.exists() else "")

    def logs_text(self) -> str:
        return "\n".join(self.log(n) for n in self.procs)

    def stop(self, name: str, timeout: float = 20.0) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


def _kill_strays(marker: str) -> None:
    """Kill by pid any process left whose command line or environment names this test's tmp dir.

    The SuperLink and the SuperNodes run in sessions of their own (their parents stop them on SIGTERM, but a
    parent killed with SIGKILL would leave them behind).
    """
    needle = marker.encode()
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            text = (d / "cmdline").read_bytes() + (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in text:
            try:
                os.kill(int(d.name), signal.SIGKILL)
            except OSError:
                pass


def test_demo_story_with_real_processes(live_server, redis_broker, settings, tmp_path, monkeypatch):
    from contracts import chain
    from contracts.models import ChainTx
    from tasks.models import Task
    from training import superlink as sl
    from training.models import Contribution, FinalModel, Round, Run, Update

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    var = tmp_path / "var"
    node = Anvil().start()
    link_address = f"127.0.0.1:{sl.free_port()}"
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path / "datasets"))
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = node.url, 31337
    settings.CHAIN_SIGNER_KEY, settings.CHAIN_KEYSTORE_FILE = "", ""
    settings.VAR_DIR, settings.PRIVATE_MEDIA_ROOT = var, var / "private"
    settings.FLWR_HOME, settings.SUPERLINK_ADDRESS = var / "flwr", link_address
    env = worker_env(
        broker_url=BROKER,
        chain_url=node.url,
        BCFL_VAR_DIR=str(var),  # PRIVATE_MEDIA_ROOT (the validation set) is <VAR_DIR>/private
        FLWR_HOME=str(var / "flwr"),
        SUPERLINK_ADDRESS=link_address,
        BCFL_DATASET_CACHE=str(tmp_path / "datasets"),
        PYTHONUNBUFFERED="1",
        TRAINING_FOLLOWER_LEASE_SECONDS="15",  # a dead follower is replaced within ~15-20 s
        TRAINING_WATCHDOG_INTERVAL="3",
        BCFL_TEST_BEAT="1",  # the test settings' beat schedule is empty otherwise
    )
    procs = Procs(tmp_path / "logs", env)
    manage = [sys.executable, str(ROOT / "manage.py")]
    celery = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bcfl_site",
        "worker",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    try:
        # given: contracts on chain, the platform's processes
        call_command("deploy_contracts", "--redeploy-missing")
        procs.start("superlink", [*manage, "run_superlink", "--address", link_address])
        procs.start("worker_chain", [*celery, "-Q", "chain", "-n", "chain@%h", "--concurrency", "1"])
        procs.start("worker_training", [*celery, "-Q", "training", "-n", "training@%h", "--concurrency", "1"])
        procs.start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bcfl_site",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / "beat-schedule"),
            ],
        )
        host, port = link_address.rsplit(":", 1)
        sl.wait_for_port(host, int(port), timeout=60, proc=procs.procs["superlink"])
        root_cert = var / "flwr" / "certs" / "ca.crt"
        assert root_cert.exists()

        # and: a digits task registered on chain by its creator (anvil dev key #5), as the demo does it:
        # `manage.py create_task` (validation set = the bundled digits test split)
        call_command(
            "create_task",
            "--dev-key",
            "5",
            "--dataset",
            "digits",
            "--rounds",
            str(ROUNDS),
            "--min-participants",
            str(HONEST + MALICIOUS),
            "--local-epochs",
            "2",
            stdout=io.StringIO(),
        )
        task = Task.objects.get()
        assert task.creator.username == Account.from_key(DEV_KEYS[5]).address
        task.refresh_from_db()
        assert task.status == Task.Status.RECRUITING and task.chain_task_id is not None
        timings["setup_s"] = round(time.monotonic() - t0, 1)

        # when: simulated participants join through the site and run their SuperNodes
        procs.start(
            "simulate",
            [
                *manage,
                "simulate_participants",
                "--task",
                str(task.pk),
                "--honest",
                str(HONEST),
                "--malicious",
                str(MALICIOUS),
                "--attack",
                "nan",
                "--site",
                live_server.url,
                "--superlink",
                link_address,
                "--root-cert",
                str(root_cert),
                "--workdir",
                str(tmp_path / "sim"),
                "--timeout",
                str(DEADLINE_S),
                "--poll",
                "2",
            ],
        )
        deadline = time.monotonic() + DEADLINE_S
        ended = (Task.Status.COMPLETED, Task.Status.FAILED, Task.Status.CANCELLED)  # finalize chain ran
        while time.monotonic() < deadline:
            task.refresh_from_db()
            if task.status in ended:
                break
            if task.status == Task.Status.TRAINING and "training_started_s" not in timings:
                timings["training_started_s"] = round(time.monotonic() - t0, 1)
            if "worker_killed_s" not in timings and Round.objects.filter(task=task).exists():
                # the first round is in: kill -9 the training worker, start a new one
                dead_follower = Run.objects.filter(task=task).latest("attempt").follower
                victim = procs.procs.pop("worker_training")
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait(timeout=10)
                timings["worker_killed_s"] = round(time.monotonic() - t0, 1)
                procs.start(
                    "worker_training2",
                    [*celery, "-Q", "training", "-n", "training2@%h", "--concurrency", "1"],
                )
            dead = [n for n, p in procs.procs.items() if n != "simulate" and p.poll() is not None]
            assert not dead, f"{dead} exited\n{procs.logs_text()}"
            time.sleep(1)
        timings["total_s"] = round(time.monotonic() - t0, 1)

        # then: the task is completed (the worker's finalize chain ran), with 3 rounds of 3 accepted and 1
        # NaN-rejected update each
        task.refresh_from_db()
        assert task.status == Task.Status.COMPLETED, (
            f"task is {task.status}: {task.status_note}\n{procs.logs_text()}"
        )
        rounds = list(Round.objects.filter(task=task).order_by("number"))
        assert [r.number for r in rounds] == list(range(1, ROUNDS + 1))
        for r in rounds:
            updates = list(Update.objects.filter(round=r))
            accepted = [u for u in updates if u.accepted]
            rejected = [u for u in updates if not u.accepted]
            assert (r.accepted_count, r.rejected_count) == (HONEST, MALICIOUS), r.record
            assert len(accepted) == HONEST and len(rejected) == MALICIOUS
            assert all("contains NaN or infinite values" in u.reason for u in rejected), [
                u.reason for u in rejected
            ]
            assert all(u.wallet and u.score_uint == 0 for u in rejected)
        assert "worker_killed_s" in timings, "the training worker was never killed"
        runs = list(Run.objects.filter(task=task))
        assert len(runs) == 1, runs  # the Flower run itself was not disturbed
        assert runs[0].follower and runs[0].follower != dead_follower  # a new follower chain took over
        commits = ChainTx.objects.filter(function="commitRound", task_ref=str(task.pk))
        assert commits.count() == ROUNDS
        assert all(tx.status == ChainTx.Status.CONFIRMED for tx in commits)
        assert sorted(r.commit_tx_id for r in rounds) == sorted(commits.values_list("pk", flat=True))
        assert chain.deployment_address("TaskRegistry")
        final = FinalModel.objects.get(task=task)
        assert final.source_round_id == rounds[-1].pk and final.sha256 == rounds[-1].checkpoint_sha256
        contributions = {c.wallet: c for c in Contribution.objects.filter(task=task)}
        assert len(contributions) == HONEST + MALICIOUS
        assert (
            sorted(c.accepted_rounds for c in contributions.values()) == [0] * MALICIOUS + [ROUNDS] * HONEST
        )
        # and: the NaN sender is judged malicious (invalid in every round): no stake, banned with its evidence;
        # the honest share the rest with the creator, to the basis point
        malicious = [c for c in contributions.values() if c.malicious]
        assert len(malicious) == MALICIOUS and all(c.share_bps == 0 for c in malicious)
        assert all(not c.malicious and c.share_bps > 0 for c in contributions.values() if c.accepted_rounds)
        assert sum(c.share_bps for c in contributions.values()) + task.creator_share_bps == 10_000
        from tasks.models import Ban

        ban = Ban.objects.get(task=task)
        assert ban.identity_id == malicious[0].participation.identity_id and "invalid update" in ban.reason
        assert len(ban.evidence["rounds"]) == ROUNDS

        # and: verify_task (a separate process) agrees with the chain
        verify = subprocess.run(
            [*manage, "verify_task", str(task.pk)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert f"OK: task {task.pk}, {ROUNDS} round(s) verified" in verify.stdout
        assert "stakes: OK root 0x" in verify.stdout  # the trail to its end: shares, root, claims, payouts
        # and: the NFT is the creator's and the reward sits in the stake pool (the chain worker sent both)
        token = task.chain_task_id
        assert chain.call("ModelNFT", "ownerOf", [token]).lower() == task.creator.username.lower()
        assert int(chain.call("StakeToken", "totalDeposited", [token])) == int(task.reward_wei)
        timings["verified_s"] = round(time.monotonic() - t0, 1)

        # and: the task page shows the progress
        with urllib.request.urlopen(f"{live_server.url}/tasks/{task.pk}/", timeout=30) as resp:  # noqa: S310
            page = resp.read().decode()
        assert f"Round {ROUNDS} of {ROUNDS}" in page
        assert "Escrow and stakes" in page and f"Model NFT #{token} minted to the creator" in page

        # and: simulate_participants ends by itself once the task is past training
        try:
            procs.procs["simulate"].wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("simulate_participants did not end\n" + procs.log("simulate"))
        assert procs.procs["simulate"].returncode == 0, procs.log("simulate")
        timings["simulate_ended_s"] = round(time.monotonic() - t0, 1)
        timings["accuracy"] = [round(r.accuracy, 4) for r in rounds]  # type: ignore[assignment]
        print("TIMINGS", timings)
    finally:
        procs.stop_all()
        _kill_strays(str(tmp_path))
        node.stop()
        print("TEARDOWN_DONE_S", round(time.monotonic() - t0, 1))
