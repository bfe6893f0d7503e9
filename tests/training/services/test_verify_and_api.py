"""verify_task against (indexed) RoundCommitted events; rounds/proof APIs; task page; admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from bcfl_core import merkle
from contracts.models import ChainEvent, ChainTx
from tests.training.services.conftest import account, chain_knows, write_round
from tests.training.services.test_services import enqueued, started, training_task  # noqa: F401
from training import services
from training.models import Round, Update
from training.verify import verify_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(var_dir, link):
    task, parts = training_task(var_dir, rounds=2)
    run = started(task, link)
    rec = Path(run.run_config["records-path"])
    ck = Path(run.run_config["output-dir"]) / "checkpoints"
    accts = [account(i) for i in range(3)]
    for r in (1, 2):
        write_round(
            rec, task, r, [(10, accts[0], True), (11, accts[1], True), (12, accts[2], r == 2)], ckpt_dir=ck
        )
    services.run_ingest(run=run)
    for i, rnd in enumerate(
        Round.objects.filter(task=task).select_related("commit_tx")
    ):  # what the indexer stores
        a = rnd.commit_tx.args
        ChainEvent.objects.create(
            chain_id=31337,
            contract_name="TaskRegistry",
            address="0x0",
            event="RoundCommitted",
            args={
                "taskId": a[0],
                "round": a[1],
                "globalModelHash": a[2],
                "updatesRoot": a[3],
                "acceptedCount": a[4],
            },
            block_number=i + 1,
            block_hash="0x",
            tx_hash=f"0x{i}",
            log_index=0,
        )
    ChainTx.objects.filter(function="commitRound").update(status="confirmed", tx_hash="0xabc")
    return task, parts


def test_verify_task_passes_then_detects_an_altered_record(trained):
    task, _ = trained
    assert verify_task(task, source="index").ok
    # when: one stored update record is altered (its score)
    u = Update.objects.filter(round__number=2, accepted=True).first()
    Update.objects.filter(pk=u.pk).update(score_uint=5)
    result = verify_task(task, source="index")
    assert not result.ok and "round 2" in result.mismatch


def test_verify_task_detects_an_altered_checkpoint(trained):
    task, _ = trained
    path = Round.objects.get(task=task, number=1).checkpoint_path
    with open(path, "ab") as f:
        f.write(b"x")
    result = verify_task(task, source="index")
    assert not result.ok and "checkpoint" in result.mismatch


def test_verify_task_command_exit_code(trained, capsys):
    task, _ = trained
    call_command("verify_task", str(task.pk), "--source", "index")
    assert "OK" in capsys.readouterr().out
    Update.objects.filter(round__number=1).update(update_sha256="ab" * 32)
    with pytest.raises(SystemExit) as exc:
        call_command("verify_task", str(task.pk), "--source", "index")
    assert exc.value.code == 1


def test_rounds_api_and_proof_permissions(trained):
    task, parts = trained
    api = APIClient()
    body = api.get(f"/api/v1/tasks/{task.pk}/rounds/").json()
    assert [r["round"] for r in body["rounds"]] == [1, 2]
    assert body["rounds"][0]["accepted"] == 2 and body["rounds"][0]["commit_status"] == "confirmed"
    url = f"/api/v1/tasks/{task.pk}/rounds/2/proof/?wallet={parts[1].wallet}"
    assert api.get(url).status_code == 403
    api.force_authenticate(parts[0].user)  # another participant
    assert api.get(url).status_code == 403
    api.force_authenticate(parts[1].user)
    proof = api.get(url).json()
    assert merkle.verify(
        [bytes.fromhex(p[2:]) for p in proof["proof"]],
        bytes.fromhex(proof["root"][2:]),
        bytes.fromhex(proof["leaf"][2:]),
    )
    rnd = Round.objects.get(task=task, number=2)
    assert proof["root"] == rnd.updates_root
    # the round's fields for TaskRegistry.verifyUpdate are those committed
    assert (proof["global_model_hash"], proof["accepted_count"]) == (
        rnd.commit_tx.args[2],
        rnd.commit_tx.args[4],
    )
    api.force_authenticate(task.creator)
    assert api.get(url).status_code == 200
    progress = api.get(f"/api/v1/tasks/{task.pk}/training/").json()
    assert progress["rounds_done"] == 2 and progress["participants"][0]["node_registered"] is True
    assert progress["participants"][2]["updates_rejected"] == 1


def test_task_page_shows_progress_chart_and_states(trained, client):
    task, _ = trained
    html = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "Round 2 of 2" in html and "<svg" in html and "updates accepted" in html


def test_start_button(var_dir, link, client):
    task, _ = training_task(var_dir, min_participants=3)
    client.force_login(task.creator)
    assert "Start training now" in client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    client.post(reverse("training:task-start", args=[task.pk]))
    task.refresh_from_db()
    assert task.status == "training"


@pytest.mark.parametrize("model", ["noderegistration", "run", "round", "update"])
def test_admin_changelists(admin_client, trained, model):
    assert admin_client.get(reverse(f"admin:training_{model}_changelist")).status_code == 200


def test_verify_task_checks_the_final_model_and_the_stakes(trained, chain_inline):
    # given: a finalized task (settled on the fake chain, its events indexed)
    from tasks.models import Task
    from training.models import FinalModel, StakeAllocation

    task, _ = trained
    chain_knows(chain_inline, task, committed=2)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.FINALIZING)
    assert services.task_finalize(task_id=task.pk) == "completed"
    for i, e in enumerate(chain_inline.events):
        ChainEvent.objects.create(
            chain_id=31337,
            contract_name=e["contract_name"],
            address=e["address"],
            event=e["event"],
            args=e["args"],
            block_number=100 + i,
            block_hash="0x",
            tx_hash=e["tx_hash"],
            log_index=i,
        )
    # the updates were signed for the registry of the fixture's deployment rows (the fake chain moved it)
    from contracts.models import Deployment
    from tests.tasks.factories import REGISTRY

    Deployment.objects.filter(name="TaskRegistry").update(address=REGISTRY)
    ok = verify_task(task, source="index")
    assert ok.ok, ok.mismatch
    assert ok.final_model.startswith(f"OK sha256 {FinalModel.objects.get(task=task).sha256}")
    assert ok.stakes[0].startswith("stakes: OK root 0x")
    # when: a stored stake is altered, the audit names it
    alloc = StakeAllocation.objects.filter(task=task).first()
    StakeAllocation.objects.filter(pk=alloc.pk).update(shares=alloc.shares + 1)
    bad = verify_task(task, source="index")
    assert not bad.ok and "stake allocations differ" in bad.mismatch
    StakeAllocation.objects.filter(pk=alloc.pk).update(shares=alloc.shares)
    # when: the stored final model is replaced by other bytes
    final = FinalModel.objects.get(task=task)
    with open(final.file.path, "ab") as f:
        f.write(b"x")
    # then
    result = verify_task(task, source="index")
    assert not result.ok and "final model" in result.mismatch


def test_verify_task_command_says_the_chain_is_down_in_one_line(trained, monkeypatch):
    from django.core.management.base import CommandError

    from contracts import chain
    from training.management.commands import verify_task as command

    task, _ = trained

    def down(*args, **kwargs):
        raise chain.ChainUnavailable("ConnectionError: connection refused")

    monkeypatch.setattr(command, "verify_task", down)
    with pytest.raises(CommandError, match="did not answer .*--source index"):
        call_command("verify_task", str(task.pk))
