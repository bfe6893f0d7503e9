"""`make demo`'s story (`manage.py play_demo`, `bcfl_site.demo.story.Story`) played for real, end to end.

anvil + deployed contracts; real Celery workers for the `default`, `chain` (concurrency 1) and `training` queues
and celery beat on Redis db 14 and the pytest test DB; the SuperLink as `manage.py run_superlink`; the site is
pytest-django's live_server. The story driver does what `make demo` shows: the creator signs in over SIWE and
funds a digits task (3 rounds); 8 honest and 2 label-flipping participants join over HTTP and run real
SuperNodes; the workers commit every round, score contributions, ban the attackers, mint the NFT and pay the
reward into the stake pool; the owner sets licence terms and lists the NFT; a buyer buys a licence, downloads the
model through its signed links and predicts over HTTP; another buyer buys the NFT; shares are claimed, the
creator claims and the payout job pays the others. `manage.py verify_task` agrees with the chain.

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
from pathlib import Path

import pytest

from tests.anvil import Anvil
from tests.workers import celery_producer_on, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/14"  # test_celery_roundtrip uses 15 (and flushes it)
HONEST, MALICIOUS, ROUNDS = 8, 2, 3
CELERY = [sys.executable, "-m", "celery", "-A", "bcfl_site"]
WORKER = [
    *CELERY,
    "worker",
    "--loglevel",
    "INFO",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
]


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


def _platform_env(node, var: Path, tmp_path: Path, link_address: str) -> dict[str, str]:
    return worker_env(
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


def _start_platform(procs: Procs, link_address: str, tmp_path: Path) -> None:
    from django.core.management import call_command

    call_command("deploy_contracts", "--redeploy-missing")
    procs.start(
        "superlink", [sys.executable, str(ROOT / "manage.py"), "run_superlink", "--address", link_address]
    )
    for queue, concurrency in (("default", "1"), ("chain", "1"), ("training", "1")):
        procs.start(
            f"worker_{queue}", [*WORKER, "-Q", queue, "-n", f"{queue}@%h", "--concurrency", concurrency]
        )
    procs.start(
        "beat", [*CELERY, "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")]
    )


class WorkerKiller:
    """The story's tick hook: once the story's task has a stored round, kill -9 the training worker and start a
    new one; every tick, fail if a platform process exited."""

    def __init__(self, procs: Procs):
        self.procs, self.story, self.dead_follower = procs, None, None

    def __call__(self) -> None:
        from training.models import Round, Run

        dead = [n for n, p in self.procs.procs.items() if p.poll() is not None]
        assert not dead, f"{dead} exited\n{self.procs.logs_text()}"
        task_id = self.story.result.task_id if self.story else None
        if self.dead_follower is not None or task_id is None:
            return
        if Round.objects.filter(task_id=task_id).exists():
            self.dead_follower = Run.objects.filter(task_id=task_id).latest("attempt").follower
            victim = self.procs.procs.pop("worker_training")
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            self.procs.start(
                "worker_training2", [*WORKER, "-Q", "training", "-n", "training2@%h", "--concurrency", "1"]
            )


def test_demo_story_plays_end_to_end(live_server, redis_broker, settings, tmp_path, monkeypatch):
    from bcfl_site.demo.story import Story, StoryConfig
    from bcfl_site.demo.summary import summary_lines
    from training import superlink as sl

    t0 = time.monotonic()
    var = tmp_path / "var"
    node = Anvil().start()
    link_address = f"127.0.0.1:{sl.free_port()}"
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path / "datasets"))
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = node.url, 31337
    settings.CHAIN_SIGNER_KEY, settings.CHAIN_KEYSTORE_FILE = "", ""
    settings.VAR_DIR, settings.PRIVATE_MEDIA_ROOT = var, var / "private"
    settings.FLWR_HOME, settings.SUPERLINK_ADDRESS = var / "flwr", link_address
    env = _platform_env(node, var, tmp_path, link_address)
    procs = Procs(tmp_path / "logs", env)
    out = io.StringIO()
    try:
        # given: the platform's processes, as `make demo-platform` runs them
        _start_platform(procs, link_address, tmp_path)
        killer = WorkerKiller(procs)
        config = StoryConfig(
            site=live_server.url,
            superlink=link_address,
            root_cert=var / "flwr" / "certs" / "ca.crt",
            workdir=tmp_path / "sim",
            honest=HONEST,
            malicious=MALICIOUS,
            rounds=ROUNDS,
        )
        story = killer.story = Story(config, out=out, on_tick=killer)

        # when: the story driver plays `make demo`'s story, the training worker killed after round 1
        try:
            result = story.play()
            summary = "\n".join(summary_lines(result, site=live_server.url))
        except Exception:
            print(out.getvalue())
            print(procs.logs_text())
            raise
        print(out.getvalue())
        print(summary)

        # then: the outcomes, from the rows and the chain
        _assert_training(result, killer)
        _assert_market(result, config)
        _assert_verified(result, env)
        for heading in (
            "Accuracy per round",
            "Shares per holder",
            "Unpaid (0 shares) and banned: 2",
            "Gas per step",
        ):
            assert heading in summary
        assert f"{live_server.url}/marketplace/models/{result.token_id}/" in summary
        assert "chain ID 31337" in summary
        print("STORY_S", result.total_s, "STEPS", result.step_times)
    finally:
        procs.stop_all()
        _kill_strays(str(tmp_path))
        node.stop()
        print("TEARDOWN_DONE_S", round(time.monotonic() - t0, 1))


def _assert_training(result, killer: WorkerKiller) -> None:
    from contracts.models import ChainTx
    from tasks.models import Ban, Task
    from training.models import Contribution, Round, Run

    task = Task.objects.get(pk=result.task_id)
    assert task.status == Task.Status.COMPLETED, task.status_note
    rounds = list(Round.objects.filter(task=task).order_by("number"))
    assert [r.number for r in rounds] == list(range(1, ROUNDS + 1))
    assert all(r.accepted_count + r.rejected_count == HONEST + MALICIOUS for r in rounds)
    commits = ChainTx.objects.filter(function="commitRound", task_ref=str(task.pk))
    assert commits.count() == ROUNDS and all(tx.status == ChainTx.Status.CONFIRMED for tx in commits)
    # the training worker was killed after round 1; the Flower run went on under a new follower
    runs = list(Run.objects.filter(task=task))
    assert killer.dead_follower is not None, "the training worker was never killed"
    assert len(runs) == 1 and runs[0].follower and runs[0].follower != killer.dead_follower
    # the label flippers are judged malicious: 0 shares, banned with their per-round evidence
    attackers = {p["wallet"] for p in result.participants if p["role"] == "malicious"}
    assert len(attackers) == MALICIOUS
    contributions = {c.wallet: c for c in Contribution.objects.filter(task=task)}
    assert len(contributions) == HONEST + MALICIOUS
    assert {w for w, c in contributions.items() if c.malicious} == attackers
    assert all(contributions[w].share_bps == 0 for w in attackers)
    assert all(c.share_bps > 0 for w, c in contributions.items() if w not in attackers)
    assert sum(c.share_bps for c in contributions.values()) + task.creator_share_bps == 10_000
    bans = list(Ban.objects.filter(task=task))
    assert {c.participation.identity_id for w, c in contributions.items() if w in attackers} == {
        b.identity_id for b in bans
    }
    assert all("Judged malicious" in b.reason and len(b.evidence["rounds"]) >= 2 for b in bans)


def _assert_market(result, config) -> None:
    from contracts import chain
    from marketplace.models import Licence, ModelToken, NFTSale
    from tasks.models import Task
    from training.models import FinalModel, StakeAllocation

    task = Task.objects.get(pk=result.task_id)
    token_id = result.token_id
    licensee, nft_buyer = result.actors["licence buyer"], result.actors["NFT buyer"]
    creator = result.actors["creator"]
    # a licence granted to the buyer, who downloaded the exact weights and got a prediction per row
    licence = Licence.objects.get(token__token_id=token_id, buyer=licensee.address)
    assert int(licence.price_wei) == config.licence_price_wei and licence.expires_at is not None
    assert result.licence["weights_sha256"] == FinalModel.objects.get(task=task).sha256
    assert len(result.licence["predicted"]) == result.licence["rows"] == 20
    assert {"weights", "onnx"} <= set(result.licence["files"])
    # the NFT changed hands, on chain and in the records; the royalty went to the stake pool
    assert chain.call("ModelNFT", "ownerOf", [token_id]).lower() == nft_buyer.address.lower()
    assert ModelToken.objects.get(token_id=token_id).owner.lower() == nft_buyer.address.lower()
    sale = NFTSale.objects.get(token__token_id=token_id)
    assert sale.seller.lower() == creator.address.lower() and int(sale.price_wei) == config.nft_price_wei
    royalty = int(sale.royalty_wei)
    assert royalty == config.nft_price_wei * 500 // 10_000
    # the stake pool holds reward + licence + royalty; every holder's shares are claimed and everyone was paid
    deposited = int(chain.call("StakeToken", "totalDeposited", [token_id]))
    assert deposited == int(task.reward_wei) + config.licence_price_wei + royalty
    assert result.payouts["deposited"] == deposited
    allocations = list(StakeAllocation.objects.filter(task=task))
    assert len(allocations) == HONEST + 1  # the honest and the creator; no leaf for the malicious
    for a in allocations:
        assert a.claimed_tx_hash and chain.call("StakeToken", "sharesClaimed", [token_id, a.holder])
        paid = int(chain.call("StakeToken", "withdrawn", [token_id, a.holder]))
        assert abs(paid - deposited * a.shares // 10_000) <= 10  # wei of rounding over 3 deposits
        assert int(chain.call("StakeToken", "claimable", [token_id, a.holder])) <= 10
    assert [tx.what for tx in creator.sent][-1] == "StakeToken.claim"


def _assert_verified(result, env: dict) -> None:
    verify = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_task", str(result.task_id)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"OK: task {result.task_id}, {ROUNDS} round(s) verified" in verify.stdout
    assert "stakes: OK root 0x" in verify.stdout
