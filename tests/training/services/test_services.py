"""Job logic against a fake SuperLink: registration, start, launch, ingest, commit, resume, finalize."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bcfl_core import merkle
from contracts.models import ChainTx
from tasks.models import Task
from tests.tasks.factories import REGISTRY, TaskFactory
from tests.training.services.conftest import account, participate, write_round
from training import selectors, services
from training.models import NodeRegistration, Round, Run, Update

pytestmark = pytest.mark.django_db
S = Task.Status


@pytest.fixture(autouse=True)
def enqueued(monkeypatch, fake_deployment):
    calls = []
    monkeypatch.setattr(
        services.common, "enqueue", lambda name, *args, countdown=None: calls.append((name, *args))
    )
    monkeypatch.setattr("contracts.services.transaction.on_commit", lambda fn: None)  # no chain worker here
    return calls


def training_task(var_dir, n=3, rounds=3, min_participants=3, first=10):
    task = TaskFactory(
        rounds=rounds, min_participants=min_participants, max_participants=5, status=S.RECRUITING
    )
    parts = [participate(task, account(first - 10 + i), registered_node=first + i) for i in range(n)]
    return task, parts


def started(task, link):
    for node_id, part in selectors.task_node_map(task=task).items():  # their SuperNodes are online
        link.nodes.setdefault(node_id, {"key": part.node_public_key, "name": part.wallet, "status": "online"})
    run = services.training_run_start(task=task)
    return services.training_run_launch(run_id=run.pk, link=link, follow=False)


def test_join_registers_node_then_starts_training(var_dir, link, enqueued):
    # given: a task needing 1 participant, joined with an OpenSSH key
    task = TaskFactory(min_participants=1, status=S.RECRUITING)
    p = participate(task, account(1))
    # when: the join's service asks for registration, and the job runs twice (redelivery)
    reg = services.node_registration_request(participation=p)
    assert enqueued[-1] == ("node_register", reg.pk)
    services.node_register(registration_id=reg.pk, link=link)
    services.node_register(registration_id=reg.pk, link=link)
    # then: one node on the SuperLink, named by the wallet; the task moved to training with one run
    reg.refresh_from_db()
    assert reg.status == NodeRegistration.Status.REGISTERED and reg.node_id == "101"
    assert [n["name"] for n in link.nodes.values()] == [p.wallet]
    task.refresh_from_db()
    assert task.status == S.TRAINING and Run.objects.filter(task=task).count() == 1
    assert ("training_run_launch", Run.objects.get(task=task).pk) in enqueued


def test_pem_key_is_converted_and_lost_db_write_finds_existing_node(var_dir, link):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    task = TaskFactory(min_participants=2, status=S.RECRUITING)
    p = participate(task, account(2))
    pem = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    reg = services.node_registration_request(participation=p)
    NodeRegistration.objects.filter(pk=reg.pk).update(public_key=pem)
    # when: the SuperLink already has the key (the first delivery died before saving the node id)
    first = link.register_node(services.openssh_public_key(pem), name=p.wallet)
    services.node_register(registration_id=reg.pk, link=link)
    # then
    reg.refresh_from_db()
    assert reg.node_id == str(first) and reg.status == "registered"
    assert Task.objects.get(pk=task.pk).status == S.RECRUITING  # 1 of 2 participants


def test_garbage_key_fails_with_reason_and_never_reads_a_path(var_dir, link):
    task = TaskFactory(status=S.RECRUITING)
    p = participate(task, account(3))
    reg = services.node_registration_request(participation=p)
    NodeRegistration.objects.filter(pk=reg.pk).update(public_key="/etc/passwd")
    services.node_register(registration_id=reg.pk, link=link)
    reg.refresh_from_db()
    assert reg.status == "failed" and "not a valid" in reg.error and not link.nodes


def test_ban_unregisters_the_persons_nodes(var_dir, link, enqueued):
    from tasks.services import ban_create

    task, parts = training_task(var_dir, n=1, min_participants=2)
    for nid in (10,):
        link.nodes[nid] = {"key": "k", "name": parts[0].wallet, "status": "online"}
    ban = ban_create(identity=parts[0].identity, task=task, reason="poisoning", evidence={}, expires_at=None)
    assert ("node_unregister_identity", ban.identity_id) in enqueued
    assert services.node_unregister_identity(identity_id=ban.identity_id, link=link) == 1
    assert services.node_unregister_identity(identity_id=ban.identity_id, link=link) == 0
    assert link.nodes[10]["status"] == "unregistered"
    assert NodeRegistration.objects.get(node_id=10).status == "unregistered"


def test_start_needs_creator_and_enough_registered_nodes(var_dir, link):
    task, parts = training_task(var_dir, n=2, min_participants=3)
    with pytest.raises(services.TrainingError, match="2 participant"):
        services.training_run_start(task=task, by=task.creator)
    other = parts[0].user
    with pytest.raises(services.TrainingError, match="Only the task's creator"):
        services.training_run_start(task=task, by=other)
    participate(task, account(9), registered_node=99)
    run = services.training_run_start(task=task, by=task.creator)
    assert services.training_run_start(task=task, by=task.creator).pk == run.pk  # no second run


def test_launch_builds_run_config_and_is_idempotent(var_dir, link):
    task, parts = training_task(var_dir)
    run = started(task, link)
    again = services.training_run_launch(run_id=run.pk, link=link, follow=False)
    assert again.flower_run_id == run.flower_run_id and len(link.runs) == 1
    rc = link.runs[int(run.flower_run_id)]
    assert rc["chain-task-id"] == task.chain_task_id and rc["registry-address"].lower() == REGISTRY.lower()
    assert json.loads(open(rc["participants-path"]).read()) == {
        str(10 + i): p.wallet for i, p in enumerate(parts)
    }
    # each reply may claim at most the examples its participant committed when joining
    assert json.loads(open(rc["example-caps-path"]).read()) == {
        str(10 + i): p.data_summary["n"] for i, p in enumerate(parts)
    }
    assert rc["num-server-rounds"] == 3 and rc["feature-shape"] == "4" and rc["num-classes"] == 3
    assert rc["test-data-path"].endswith(".npz") and rc["records-path"].endswith(
        f"runs/{task.pk}/1/rounds.jsonl"
    )


def test_interrupted_launch_is_replaced_by_a_new_attempt(var_dir, link):
    task, _ = training_task(var_dir)
    run = services.training_run_start(task=task)
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now())  # died inside `flwr run`
    link.statuses[77] = "running"  # a stray run the platform does not know
    new = services.training_run_launch(run_id=run.pk, link=link, follow=False)
    assert new.attempt == 2 and new.flower_run_id is not None
    assert Run.objects.get(pk=run.pk).status == Run.Status.LOST and link.statuses[77] == "finished:stopped"


def test_ingest_is_idempotent_and_roots_match_contracts_merkle(var_dir, link):
    # given: two rounds recorded, one rejected update, and a half-written third line (ServerApp died mid-write)
    task, parts = training_task(var_dir)
    run = started(task, link)
    rec = Path(run.run_config["records-path"])
    accts = [account(i) for i in range(3)]
    write_round(rec, task, 1, [(10, accts[0], True), (11, accts[1], True), (12, accts[2], False)])
    write_round(
        rec,
        task,
        2,
        [(10, accts[0], True), (11, accts[1], True), (12, accts[2], True)],
        partial_tail='{"round": 3, "glo',
    )
    # when: the follower looks twice
    assert services.training_run_follow_step(run_id=run.pk, link=link) == "running"
    assert services.training_run_follow_step(run_id=run.pk, link=link) == "running"
    # then: two rounds, one commitRound each, with the contracts.merkle root over (wallet, hash, score, accepted)
    rounds = list(Round.objects.filter(task=task).order_by("number"))
    assert [r.number for r in rounds] == [1, 2]
    txs = ChainTx.objects.filter(function="commitRound")
    assert sorted(t.idempotency_key for t in txs) == [
        f"commit-round:{task.pk}:1",
        f"commit-round:{task.pk}:2",
    ]
    r1 = rounds[0]
    ups = sorted(Update.objects.filter(round=r1), key=lambda u: u.node_id)
    leaves = [
        merkle.leaf_hash(u.wallet, "0x" + u.update_sha256, 10**6 if u.accepted else 0, u.accepted)
        for u in ups
    ]
    assert r1.updates_root == "0x" + merkle.merkle_root(leaves).hex()
    assert (r1.accepted_count, r1.rejected_count) == (2, 1)
    tx = txs.get(idempotency_key=f"commit-round:{task.pk}:1")
    assert tx.args == [
        task.chain_task_id,
        1,
        "0x" + r1.global_sha256,
        r1.updates_root,
        2,
    ] and tx.task_ref == str(task.pk)
    assert merkle.verify(merkle.merkle_proof(leaves, 2), merkle.merkle_root(leaves), leaves[2])


def test_resume_after_serverapp_death_picks_last_committed_round(var_dir, link):
    # given: round 1 and 2 recorded with checkpoints, then the Flower run fails
    task, _ = training_task(var_dir)
    run = started(task, link)
    rec = Path(run.run_config["records-path"])
    ck = Path(run.run_config["output-dir"]) / "checkpoints"
    accts = [account(i) for i in range(3)]
    for r in (1, 2):
        write_round(rec, task, r, [(10 + i, a, True) for i, a in enumerate(accts)], ckpt_dir=ck)
    link.statuses[int(run.flower_run_id)] = "finished:failed"
    # when
    state, current = services.training_follow(run_id=run.pk, link=link, max_seconds=0, sleep=lambda s: None)
    # then: attempt 2 runs rounds 3.. from round 2's checkpoint
    new = Run.objects.get(pk=current)
    assert new.attempt == 2 and new.resume_from_round == 2 and state == "running"
    rc = link.runs[int(new.flower_run_id)]
    assert rc["resume-from-round"] == 2 and rc["initial-checkpoint"].endswith("round-0002.safetensors")
    assert rc["initial-sha256"] == Round.objects.get(task=task, number=2).global_sha256
    # and: the new run records round 3 (and a stray repeat of round 2 is ignored): one commit per round
    rec2 = Path(rc["records-path"])
    write_round(rec2, task, 2, [(10, accts[0], True)])
    write_round(rec2, task, 3, [(10 + i, a, True) for i, a in enumerate(accts)], ckpt_dir=ck)
    link.statuses[int(new.flower_run_id)] = "finished:completed"
    state, _ = services.training_follow(run_id=new.pk, link=link, max_seconds=0, sleep=lambda s: None)
    assert state == "waiting"  # commits not confirmed yet
    assert ChainTx.objects.filter(function="commitRound").count() == 3
    assert list(Round.objects.filter(task=task).values_list("number", "run__attempt")) == [
        (1, 1),
        (2, 1),
        (3, 2),
    ]
    # when: the ledger confirms every commit
    ChainTx.objects.filter(function="commitRound").update(status=ChainTx.Status.CONFIRMED)
    assert services.training_run_follow_step(run_id=new.pk, link=link) == "finalizing"
    assert Task.objects.get(pk=task.pk).status == S.FINALIZING


def test_stale_heartbeat_stops_the_run_and_resumes(var_dir, link, settings):
    settings.TRAINING_HEARTBEAT_TIMEOUT = 5
    task, _ = training_task(var_dir)
    run = started(task, link)
    hb = Path(run.run_config["heartbeat-path"])
    hb.parent.mkdir(parents=True, exist_ok=True)
    hb.write_text("0")
    os.utime(hb, (time.time() - 30, time.time() - 30))
    assert services.training_run_follow_step(run_id=run.pk, link=link) == "resumed"
    assert link.statuses[int(run.flower_run_id)] == "finished:stopped"
    assert "heartbeat" in Run.objects.get(pk=run.pk).error


def test_too_few_online_participants_fails_the_task_with_reason(var_dir, link):
    task, _ = training_task(var_dir)
    run = started(task, link)
    for nid in (11, 12):  # 1 of 3 online
        link.nodes[nid]["status"] = "offline"
    link.statuses[int(run.flower_run_id)] = "finished:failed"
    Path(run.run_config["error-path"]).write_text("round 1: only 1 participant(s) answered, the task needs 3")
    assert services.training_run_follow_step(run_id=run.pk, link=link) == "failed"
    task.refresh_from_db()
    assert task.status == S.FAILED and "only 1 participant node(s) online" in task.status_note
    # and: the ServerApp's own reason is kept with the run and shown in the task's note
    assert Run.objects.get(pk=run.pk).error.endswith(
        "round 1: only 1 participant(s) answered, the task needs 3"
    )
    assert "only 1 participant(s) answered" in task.status_note


def test_unknown_node_in_record_gets_no_leaf(var_dir, link):
    task, _ = training_task(var_dir)
    run = started(task, link)
    write_round(
        Path(run.run_config["records-path"]),
        task,
        1,
        [(10, account(0), True), (555, account(7), True)],
    )
    services.run_ingest(run=run)
    stranger = Update.objects.get(node_id=555)
    assert not stranger.accepted and stranger.leaf == "" and stranger.wallet == ""
    assert Round.objects.get(task=task).accepted_count == 1


def test_a_node_recorded_twice_in_a_round_is_stored_once(var_dir, link):
    # given: a record line (e.g. from an older ServerApp) naming the same node twice
    task, _ = training_task(var_dir)
    run = started(task, link)
    write_round(
        Path(run.run_config["records-path"]),
        task,
        1,
        [(10, account(0), True), (1, account(7), False), (1, account(8), False)],
    )
    # when
    services.run_ingest(run=run)
    # then: the round is stored (not stuck on the unique constraint), one row per node
    rnd = Round.objects.get(task=task, number=1)
    assert sorted(Update.objects.filter(round=rnd).values_list("node_id", flat=True)) == ["1", "10"]
    assert rnd.accepted_count == 1 and rnd.commit_tx is not None


def test_superlink_restart_reregisters_nodes_with_new_ids(var_dir, enqueued):
    from tests.training.services.conftest import FakeSuperLink

    # given: a registered node on a SuperLink that then restarts with empty state
    task = TaskFactory(min_participants=2, status=S.RECRUITING)
    reg = services.node_registration_request(participation=participate(task, account(1)))
    services.node_register(registration_id=reg.pk, link=FakeSuperLink())
    reg.refresh_from_db()
    old_id = reg.node_id
    fresh = FakeSuperLink()
    fresh.next_node = 500
    # when
    count = services.nodes_reregister_all(link=fresh)
    # then: registered again, under the new node id
    reg.refresh_from_db()
    assert count == 1 and reg.status == NodeRegistration.Status.REGISTERED
    assert reg.node_id == "501" != old_id
    assert [n["name"] for n in fresh.nodes.values()] == [reg.wallet]


def test_follower_asks_flower_for_status_only_when_needed(var_dir, link, settings, monkeypatch):
    # given: a running run with a fresh ServerApp heartbeat and rounds still to come
    settings.TRAINING_STATUS_POLL_SECONDS = 3600
    task, _ = training_task(var_dir)
    run = started(task, link)
    hb = Path(run.run_config["heartbeat-path"])
    hb.parent.mkdir(parents=True, exist_ok=True)
    hb.write_text("0")
    calls = []
    real = link.run_status
    monkeypatch.setattr(link, "run_status", lambda rid: calls.append(rid) or real(rid))
    # when: the follower looks five times
    for _ in range(5):
        assert services.training_run_follow_step(run_id=run.pk, link=link) == "running"
    # then: one `flwr ls` (the first look), not one per look
    assert len(calls) == 1
    # and: a stale heartbeat makes it ask again at once
    os.utime(hb, (time.time() - 600, time.time() - 600))
    services.training_run_follow_step(run_id=run.pk, link=link)
    assert len(calls) == 2


# --- worker crashes: follower leases and the watchdog ----------------------------------------------


def test_follower_lease_admits_one_chain_at_a_time(var_dir, link, settings):
    settings.TRAINING_FOLLOWER_LEASE_SECONDS = 60
    task, _ = training_task(var_dir)
    run = started(task, link)
    # a chain takes the lease and renews it; another is refused while it is live
    assert services.follower_claim(run_id=run.pk, token="a")
    assert services.follower_claim(run_id=run.pk, token="a")
    assert not services.follower_claim(run_id=run.pk, token="b")
    assert services.training_follow(run_id=run.pk, link=link, max_seconds=0, token="b") == (
        "duplicate",
        run.pk,
    )
    assert services.follower_claim(run_id=run.pk, token=None)  # in-process callers are not leased
    # once the lease has run out (its worker died), the next chain takes over and the old one is refused
    Run.objects.filter(pk=run.pk).update(follower_until=timezone.now() - timedelta(seconds=1))
    assert services.follower_claim(run_id=run.pk, token="b")
    assert not services.follower_claim(run_id=run.pk, token="a")
    assert Run.objects.get(pk=run.pk).follower == "b"


def test_launch_under_a_lease_hands_its_token_to_the_follower(var_dir, link, enqueued):
    task, _ = training_task(var_dir)
    for node_id, part in selectors.task_node_map(task=task).items():
        link.nodes.setdefault(node_id, {"key": part.node_public_key, "name": part.wallet, "status": "online"})
    run = services.training_run_start(task=task)
    # a second launch job (watchdog's, or a redelivery) while the first holds the lease does nothing
    assert services.follower_claim(run_id=run.pk, token="first", seconds=180)
    services.training_run_launch(run_id=run.pk, link=link, token="second")
    assert Run.objects.get(pk=run.pk).flower_run_id is None and not link.runs
    # the holder launches and its follower continues the same chain
    launched = services.training_run_launch(run_id=run.pk, link=link, token="first")
    assert launched.flower_run_id is not None and len(link.runs) == 1
    assert enqueued[-1] == ("training_run_follow", run.pk, "first")


def test_watchdog_restarts_chains_whose_lease_ran_out(var_dir, link, enqueued, settings):
    settings.TRAINING_FOLLOWER_LEASE_SECONDS = 60
    now = timezone.now()
    ago = lambda s: now - timedelta(seconds=s)  # noqa: E731
    # a running run whose follower died 2 minutes ago; one whose follower is alive; one never launched (old)
    dead, _ = training_task(var_dir)
    dead_run = started(dead, link)
    Run.objects.filter(pk=dead_run.pk).update(follower="x", follower_until=ago(120))
    alive, _ = training_task(var_dir, first=20)
    alive_run = started(alive, link)
    Run.objects.filter(pk=alive_run.pk).update(follower="y", follower_until=now + timedelta(seconds=30))
    unlaunched, _ = training_task(var_dir, first=30)
    stuck = services.training_run_start(task=unlaunched)
    Run.objects.filter(pk=stuck.pk).update(created_at=ago(300))
    fresh, _ = training_task(var_dir, first=40)
    just_created = services.training_run_start(task=fresh)  # its launch job is still queued: left alone
    # and: a node registration whose job died with its worker
    pending = NodeRegistration.objects.first()
    NodeRegistration.objects.filter(pk=pending.pk).update(status=NodeRegistration.Status.PENDING)
    NodeRegistration.objects.filter(pk=pending.pk).update(updated_at=ago(300))
    enqueued.clear()

    acted = services.training_watchdog()

    assert acted == {"launch": [stuck.pk], "follow": [dead_run.pk], "node_register": [pending.pk]}
    assert sorted(enqueued) == sorted(
        [
            ("training_run_launch", stuck.pk),
            ("training_run_follow", dead_run.pk),
            ("node_register", pending.pk),
        ]
    )
    assert just_created.pk not in {pk for ids in acted.values() for pk in ids}


def test_watchdog_follows_only_the_latest_attempt_and_only_training_tasks(var_dir, link, enqueued):
    task, _ = training_task(var_dir)
    first = started(task, link)
    Run.objects.filter(pk=first.pk).update(status=Run.Status.FAILED)
    second = Run.objects.create(task=task, attempt=2, status=Run.Status.RUNNING, flower_run_id="9")
    Run.objects.filter(task=task).update(created_at=timezone.now() - timedelta(hours=1))
    done, _ = training_task(var_dir, first=50)
    done_run = started(done, link)
    Task.objects.filter(pk=done.pk).update(status=S.FINALIZING)
    Run.objects.filter(pk=done_run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert services.training_watchdog()["follow"] == [second.pk]


def test_follow_job_keeps_its_chain_token_and_a_duplicate_chain_stops(var_dir, link, monkeypatch):
    from training import jobs

    task, _ = training_task(var_dir)
    run = started(task, link)
    monkeypatch.setattr(services.common, "superlink", lambda: link)
    monkeypatch.setattr(jobs, "FOLLOW_SLICE_SECONDS", 0.0)
    sent = []
    monkeypatch.setattr(jobs.training_run_follow, "apply_async", lambda args, countdown: sent.append(args))

    assert jobs.training_run_follow.run(run.pk) == "running"  # a new chain (the watchdog's) gets a token
    token = Run.objects.get(pk=run.pk).follower
    assert len(token) == 32 and sent == [[run.pk, token]]
    assert jobs.training_run_follow.run(run.pk, token) == "running"  # its next slice
    assert jobs.training_run_follow.run(run.pk, "f" * 32) == "duplicate"  # a late redelivery of a dead chain
    assert sent == [[run.pk, token], [run.pk, token]]


def test_run_lost_by_a_restarted_superlink_is_resumed_without_counting_reconnecting_nodes(var_dir, link):
    # given: round 1 stored, then the SuperLink restarts with fresh state: it no longer knows the run, and the
    # SuperNodes have not reconnected yet
    from training.superlink import RunNotFound

    task, _ = training_task(var_dir)
    run = started(task, link)
    ck = Path(run.run_config["output-dir"]) / "checkpoints"
    write_round(
        Path(run.run_config["records-path"]),
        task,
        1,
        [(10 + i, account(i), True) for i in range(3)],
        ckpt_dir=ck,
    )

    known = link.run_status

    def unknown(run_id):
        if int(run_id) == int(run.flower_run_id):
            raise RunNotFound(f"the SuperLink does not know Flower run {run_id}")
        return known(run_id)

    link.run_status = unknown
    for node in link.nodes.values():
        node["status"] = "offline"

    # when
    state, current = services.training_follow(run_id=run.pk, link=link, max_seconds=0, sleep=lambda s: None)

    # then: a new attempt resumes after round 1; the task is still training
    old, new = Run.objects.get(pk=run.pk), Run.objects.get(pk=current)
    assert old.status == Run.Status.FAILED and "The SuperLink lost Flower run" in old.error
    assert new.attempt == 2 and new.resume_from_round == 1 and new.flower_run_id is not None
    assert Task.objects.get(pk=task.pk).status == S.TRAINING and state == "running"


def test_superlink_that_does_not_answer_is_asked_again_later(var_dir, link):
    from training.superlink import FlowerError

    task, _ = training_task(var_dir)
    run = started(task, link)

    def down(run_id):
        raise FlowerError("connection refused")

    link.run_status = down
    assert services.training_run_follow_step(run_id=run.pk, link=link) == "running"
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING


def test_a_ban_mid_training_reaches_the_running_serverapp_at_once(var_dir, link, enqueued):
    """The ban writes the run's banned-nodes file before any job runs: the ServerApp reads it every round."""
    from tasks.services import ban_create

    # given: a running task with three participants' nodes 10, 11, 12
    task, parts = training_task(var_dir)
    run = started(task, link)
    rc = link.runs[int(run.flower_run_id)]
    assert json.loads(open(rc["banned-path"]).read()) == []
    # when: participant 1 is banned (inside the ban's transaction, before its commit)
    ban_create(identity=parts[1].identity, task=task, reason="poisoning", evidence={}, expires_at=None)
    # then
    assert json.loads(open(rc["banned-path"]).read()) == [11]
