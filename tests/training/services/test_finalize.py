"""The finalization chain: final model + contributions + completed, idempotent steps, retries then a failed task
with the reason, the watchdog restarting a chain whose lease ran out, and verify_task over the final model."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Task
from tests.training.factories import RoundFactory, RunFactory, UpdateFactory, checkpoint_file
from tests.training.services.conftest import TaskFactory, account, chain_knows, participate
from training import jobs, services
from training.models import Contribution, Finalization, FinalModel
from training.services import finalize
from training.services.common import enqueue as real_enqueue  # before the autouse fixture replaces it

pytestmark = pytest.mark.django_db
S = Task.Status
SCORES = {
    1: (0.25, 0.75, None),
    2: (0.5, 0.0, 0.125),
}  # round -> score of participants 0, 1, 2 (None: no update)


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(
        services.common, "enqueue", lambda name, *args, countdown=None: calls.append((name, *args))
    )
    return calls


@pytest.fixture
def finalizing(tmp_path, chain_inline):
    """A finalizing task: 2 rounds stored with checkpoints, 3 participants (the third rejected in round 1, the
    second rejected in round 2)."""
    task = TaskFactory(rounds=2, status=S.FINALIZING, max_participants=3)
    chain_knows(chain_inline, task, committed=2)
    parts = [participate(task, account(i)) for i in range(3)]
    run = RunFactory(task=task)
    for number, scores in SCORES.items():
        path, sha, weights = checkpoint_file(tmp_path / "ck" / f"round-{number}.safetensors", number)
        rnd = RoundFactory(
            task=task,
            run=run,
            number=number,
            checkpoint_path=path,
            checkpoint_sha256=sha,
            global_sha256=weights,
            accuracy=0.5 + number / 10,
            loss=1.0 / number,
        )
        for i, score in enumerate(scores):
            if score is not None:
                UpdateFactory(
                    round=rnd, participation=parts[i], node_id=str(10 + i), score=score, accepted=score > 0
                )
    return task, parts


def test_finalize_twice_gives_one_final_model_one_set_of_contributions_and_completes(finalizing):
    task, parts = finalizing
    # when: the chain runs to the end, then again (a redelivered job), then every step once more
    assert services.task_finalize(task_id=task.pk) == "completed"
    first = FinalModel.objects.get(task=task)
    assert services.task_finalize(task_id=task.pk) == "completed"
    for _, step in finalize.FINALIZE_STEPS[:-1]:
        step(task=task)
    # then: one final model, the last round's checkpoint byte for byte, with every round's metrics
    final = FinalModel.objects.get(task=task)
    last = task.training_rounds.get(number=2)
    assert final.pk == first.pk and final.file.name == first.file.name
    assert final.sha256 == last.checkpoint_sha256 and final.weights_sha256 == last.global_sha256
    assert final.source_round_id == last.pk and final.file.read() == open(last.checkpoint_path, "rb").read()
    assert [r["round"] for r in final.metrics["rounds"]] == [1, 2]
    assert final.metrics["final"] == {"accuracy": 0.7, "loss": 0.5, "round": 2}
    # and: one contribution per participant: score per round (rejected or missing = 0) and the sum
    rows = {c.wallet: c for c in Contribution.objects.filter(task=task)}
    assert len(rows) == 3 and Contribution.objects.count() == 3
    assert (
        rows[parts[0].wallet].per_round == {"1": 0.25, "2": 0.5} and rows[parts[0].wallet].cumulative == 0.75
    )
    assert (
        rows[parts[1].wallet].per_round == {"1": 0.75, "2": 0.0}
        and rows[parts[1].wallet].accepted_rounds == 1
    )
    assert (
        rows[parts[2].wallet].per_round == {"1": 0.0, "2": 0.125}
        and rows[parts[2].wallet].cumulative == 0.125
    )
    # and: the task is completed, the chain's record says every step is done
    task.refresh_from_db()
    assert task.status == S.COMPLETED and final.sha256[:16] in task.status_note
    fin = Finalization.objects.get(task=task)
    assert fin.status == Finalization.Status.COMPLETED
    assert fin.steps_done == [name for name, _ in finalize.FINALIZE_STEPS]


def test_a_transient_error_is_retried_with_backoff_then_the_task_fails_with_the_reason(
    finalizing, monkeypatch, settings
):
    # given: a step whose storage keeps failing
    settings.TRAINING_FINALIZE_MAX_RETRIES, settings.TRAINING_FINALIZE_RETRY_BACKOFF = 2, 5.0
    task, _ = finalizing

    def disk_full(*, task):
        raise OSError("No space left on device")

    steps = [(n, disk_full if n == "contributions" else s) for n, s in finalize.FINALIZE_STEPS]
    monkeypatch.setattr(finalize, "FINALIZE_STEPS", steps)
    # when: the chain's deliveries run one after another
    outcomes = [services.finalize_advance(task_id=task.pk, token="chain") for _ in range(4)]
    # then: the first step is done, the failing one is retried twice (5 s, then 10 s), then the task fails
    assert [(o.state, o.step, o.countdown) for o in outcomes] == [
        ("more", "final_model", 0.0),
        ("retry", "contributions", 5.0),
        ("retry", "contributions", 10.0),
        ("failed", "contributions", 0.0),
    ]
    task.refresh_from_db()
    assert task.status == S.FAILED
    assert task.status_note == (
        "Finalization failed at step contributions: OSError: No space left on device (tried 3 times)"
    )
    assert Finalization.objects.get(task=task).status == Finalization.Status.FAILED
    assert services.finalize_advance(task_id=task.pk, token="chain").state == "failed"  # a late delivery


def test_a_permanent_error_fails_the_task_at_once(finalizing):
    # given: the last checkpoint was altered after its round was recorded
    task, _ = finalizing
    with open(task.training_rounds.get(number=2).checkpoint_path, "ab") as f:
        f.write(b"x")
    # when
    assert services.task_finalize(task_id=task.pk) == "failed"
    # then: failed with the reason, no final model, nothing left in finalizing
    task.refresh_from_db()
    assert task.status == S.FAILED and task.status_note.startswith(
        "Finalization failed at step final_model: FinalizeError: the checkpoint of round 2 differs from its record"
    )
    assert not FinalModel.objects.exists()


def test_the_job_chain_runs_step_by_step_under_one_lease(finalizing, monkeypatch):
    task, _ = finalizing
    sent = []
    monkeypatch.setattr(jobs.task_finalize, "apply_async", lambda args, countdown: sent.append(args))
    # when: a new chain starts, then its own next deliveries run
    assert jobs.task_finalize.run(task.pk) == "more"
    token = Finalization.objects.get(task=task).follower
    assert len(token) == 32 and sent == [[task.pk, token]]
    assert jobs.task_finalize.run(task.pk, "f" * 32) == "duplicate"  # another chain while the lease is live
    steps = len(finalize.FINALIZE_STEPS)
    for _ in range(steps - 2):  # contributions, verdicts, stakes, model card, chain send and confirm
        assert jobs.task_finalize.run(task.pk, token) == "more"
    assert jobs.task_finalize.run(task.pk, token) == "completed"
    # then
    assert sent == [[task.pk, token]] * (steps - 1)
    assert Task.objects.get(pk=task.pk).status == S.COMPLETED


def test_watchdog_restarts_a_finalize_chain_whose_lease_ran_out(finalizing, enqueued, settings):
    settings.TRAINING_FOLLOWER_LEASE_SECONDS = 60
    task, _ = finalizing
    now = timezone.now()
    # given: a chain that saved the final model, then died with its worker (lease ran out a minute ago)
    assert services.finalize_advance(task_id=task.pk, token="dead").state == "more"
    saved = FinalModel.objects.get(task=task)
    Finalization.objects.filter(task=task).update(follower_until=now - timedelta(seconds=60))
    # and: a finalizing task whose chain is alive, one whose first job is still queued, one that never got one
    alive = TaskFactory(status=S.FINALIZING)
    Finalization.objects.create(task=alive, follower="live", follower_until=now + timedelta(seconds=30))
    queued = TaskFactory(status=S.FINALIZING)
    Finalization.objects.create(task=queued)
    lost = TaskFactory(status=S.FINALIZING)
    Task.objects.filter(pk=lost.pk).update(updated_at=now - timedelta(minutes=5))
    # when
    restarted = services.finalize_watchdog()
    # then: new chains for the dead and the lost one only
    assert restarted == sorted([task.pk, lost.pk])
    assert sorted(enqueued) == sorted([("task_finalize", task.pk), ("task_finalize", lost.pk)])
    # and: the new chain resumes after the step already done; the dead chain's late delivery stops
    assert services.task_finalize(task_id=task.pk, token="new") == "completed"
    assert FinalModel.objects.get(task=task).created_at == saved.created_at
    assert Task.objects.get(pk=task.pk).status == S.COMPLETED


def test_watchdog_beat_job_also_covers_finalizing_tasks(finalizing, settings):
    task, _ = finalizing
    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert jobs.training_watchdog.run()["finalize"] == [task.pk]


def test_finishing_training_enqueues_the_finalize_chain(enqueued):
    task = TaskFactory(status=S.TRAINING, rounds=1)
    services.training_finished(task=task)
    task.refresh_from_db()
    assert task.status == S.FINALIZING and ("task_finalize", task.pk) in enqueued
    assert Finalization.objects.get(task=task).status == Finalization.Status.RUNNING


def test_admin_lists_final_models_and_contributions_read_only(finalizing, admin_client):
    task, _ = finalizing
    services.task_finalize(task_id=task.pk)
    for name in ("finalmodel", "contribution"):
        assert admin_client.get(f"/admin/training/{name}/").status_code == 200
        assert admin_client.get(f"/admin/training/{name}/add/").status_code == 403
    final = FinalModel.objects.get(task=task)
    assert (
        admin_client.post(f"/admin/training/finalmodel/{final.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )


def test_services_send_jobs_by_name_after_commit_to_the_training_queue(
    monkeypatch, django_capture_on_commit_callbacks
):
    from celery import current_app

    sent = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args, countdown: sent.append((name, args, countdown))
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        real_enqueue("task_finalize", 7, "t", countdown=5.0)
        assert sent == []  # not before the commit
    assert len(callbacks) == 1, callbacks
    assert sent == [("training.jobs.task_finalize", [7, "t"], 5.0)]
    # every job name the services send is a registered job of the `training` queue
    for name in (
        "node_register",
        "node_unregister_identity",
        "training_maybe_start",
        "training_run_launch",
        "training_run_follow",
        "task_finalize",
    ):
        assert getattr(jobs, name).name == f"training.jobs.{name}"
        assert current_app.amqp.router.route({}, f"training.jobs.{name}")["queue"].name == "training"
