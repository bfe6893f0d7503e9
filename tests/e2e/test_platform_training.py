"""Platform training end to end: anvil + contracts, SuperLink (TLS + node auth), 3 SuperNodes on digits.

Driven through training.services in-process (no Celery worker); ledger transactions are processed with
chain_tx_process. The ServerApp is killed with SIGKILL after round 2; the follower resumes from round 2's
checkpoint. Then: 5 rounds, one commitRound each, verify_task OK, and a tampered record is detected.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from contracts import chain
from contracts.models import ChainTx
from tasks.models import Task
from tests.e2e.platform_run import start_platform_run
from training import selectors
from training.models import Contribution, Finalization, FinalModel, Round, Run, StakeAllocation, Update
from training.verify import verify_task

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
ROUNDS, NODES = 5, 3
KILL_AFTER_ROUND = 2


def _serverapp_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"flwr-serverapp" in part for part in cmd[:2]):
                pids.append(int(d.name))
    return pids


def _metadata_and_profits(task, token: int) -> None:
    """Where the contracts point (tokenURI, the ERC-1155 `{id}` template) the platform answers; revenue
    deposited in the stake pool reaches every holder by the beat's batched push, to the wei."""
    from urllib.parse import urlparse

    from django.test import Client

    from contracts.devwallet import dev_send
    from tests.anvil import DEV_KEYS
    from training.services import payouts

    web = Client()
    meta = web.get(urlparse(chain.call("ModelNFT", "tokenURI", [token])).path)
    assert meta.status_code == 200 and meta.json()["name"].startswith(f"BCFL model #{token}")
    stake_uri = chain.call("StakeToken", "uri", [token]).replace("{id}", f"{token:064x}")
    assert web.get(urlparse(stake_uri).path).json()["decimals"] == 0
    holders = {a.holder: a.shares for a in StakeAllocation.objects.filter(task=task)}
    w3 = chain.get_w3()
    before = {h: w3.eth.get_balance(h) for h in holders}
    deposit = 10**18 + 7  # a licence sale, say (7 wei to see the rounding)
    dev_send(chain.build_call("StakeToken", "depositRevenue", [token], value=deposit), DEV_KEYS[8])
    reward = int(task.reward_wei)
    assert payouts.distribute_profits(min_wei=1) == {task.pk: len(holders)}
    for tx in ChainTx.objects.filter(function="pushPayouts", status=ChainTx.Status.QUEUED):
        from contracts.services import chain_tx_process

        assert chain_tx_process(tx_id=tx.pk).status == ChainTx.Status.CONFIRMED
    for h, shares in holders.items():
        gained = w3.eth.get_balance(h) - before[h]
        assert (
            gained == (reward + deposit) * shares // 10_000
            or abs(gained - (reward + deposit) * shares / 10_000) < 2
        )


def test_platform_training_with_signed_updates_crash_and_resume(tmp_path, settings, anvil, monkeypatch):
    # given: a digits task on chain, 3 joined participants with registered nodes, the Flower run launched
    t0 = time.monotonic()
    timings: dict = {}
    p = start_platform_run(
        tmp_path, settings, monkeypatch, anvil.url, nodes=NODES, rounds=ROUNDS, min_participants=NODES
    )
    task = p.task
    try:
        timings["setup_s"] = round(time.monotonic() - t0, 1)

        # when: the follower runs; the ServerApp is killed after round 2; ledger txs are sent in order
        killed = []

        def kill_serverapp_once():
            if not killed and selectors.last_round_number(task=task) >= KILL_AFTER_ROUND:
                pids = _serverapp_pids()
                assert pids, "no flwr-serverapp process found"
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.append(selectors.last_round_number(task=task))

        state = p.follow(timeout=420, on_step=kill_serverapp_once)
        timings["killed_after_round"] = killed[0] if killed else None
        timings["total_s"] = round(time.monotonic() - t0, 1)

        # then
        task.refresh_from_db()
        assert state == "finalizing" and task.status == Task.Status.FINALIZING, (state, task.status_note)
        # and: the finalize chain the follower queued (a `training` job) completes the task
        assert ("task_finalize", task.pk) in p.queued
        assert p.finalize() == "completed"
        task.refresh_from_db()
        assert task.status == Task.Status.COMPLETED, task.status_note
        # and: on chain, the NFT is the creator's, the reward moved into the stake pool under the stored root,
        # and every holder's shares were claimed on its behalf by the beat job (balances = leaves)
        fin = Finalization.objects.get(task=task)
        token = task.chain_task_id
        assert chain.call("ModelNFT", "ownerOf", [token]).lower() == task.creator.username.lower()
        assert "0x" + bytes(chain.call("StakeToken", "stakesRoot", [token])).hex() == fin.stakes_root
        assert chain.call("TaskRegistry", "getTask", [token])[1] == 0  # escrow emptied
        assert int(chain.call("StakeToken", "totalDeposited", [token])) == int(task.reward_wei)
        for alloc in StakeAllocation.objects.filter(task=task):
            assert alloc.claimed_tx_hash
            assert chain.call("StakeToken", "balanceOf", [alloc.holder, token]) == alloc.shares
        _metadata_and_profits(task, token)
        rounds = list(Round.objects.filter(task=task).order_by("number"))
        assert [r.number for r in rounds] == list(range(1, ROUNDS + 1))
        assert Run.objects.filter(task=task).count() >= 2  # resumed
        assert ChainTx.objects.filter(function="commitRound").count() == ROUNDS
        assert all(r.accepted_count == NODES and r.rejected_count == 0 for r in rounds)
        assert rounds[-1].accuracy >= 0.90, [r.accuracy for r in rounds]
        final = FinalModel.objects.get(task=task)
        assert final.source_round_id == rounds[-1].pk and final.sha256 == rounds[-1].checkpoint_sha256
        contributions = Contribution.objects.filter(task=task)
        assert contributions.count() == NODES and all(len(c.per_round) == ROUNDS for c in contributions)
        result = verify_task(task)
        assert result.ok, result.mismatch
        assert result.stakes and result.stakes[0].startswith("stakes: OK root")
        # and: one altered stored update record is detected
        u = Update.objects.filter(round__number=3).first()
        Update.objects.filter(pk=u.pk).update(update_sha256="00" * 32)
        bad = verify_task(task)
        assert not bad.ok and "round 3" in bad.mismatch
        timings["accuracy"] = [round(r.accuracy, 4) for r in rounds]
        timings["runs"] = list(
            Run.objects.filter(task=task).values_list("attempt", "resume_from_round", "status")
        )
        print("TIMINGS", timings)
    finally:
        p.stop()
