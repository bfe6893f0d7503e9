"""Pages: authorisation, create flow (no chain needed), constant query count of the list."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.models import Task
from tests.tasks.factories import UserFactory, npz_bytes
from tests.tasks.test_forms import VALID

pytestmark = pytest.mark.django_db


def test_anonymous_cannot_create(client):
    resp = client.get(reverse("tasks:create"))
    assert resp.status_code == 302 and "login" in resp["Location"]
    resp = client.post(reverse("tasks:create"), VALID)
    assert resp.status_code == 302 and Task.objects.count() == 0


def test_create_saves_registering_task_with_private_file(client, settings, fake_deployment):
    # given
    user = UserFactory()
    client.force_login(user)
    # when
    data = {**VALID, "validation_file": SimpleUploadedFile("val.npz", npz_bytes())}
    resp = client.post(reverse("tasks:create"), data)
    # then
    task = Task.objects.get()
    assert resp.status_code == 302 and resp["Location"] == reverse("tasks:register", args=[task.pk])
    assert task.status == Task.Status.REGISTERING and task.spec_hash.startswith("0x")
    path = Path(task.validation_file.path)
    assert path.is_file() and str(path).startswith(str(settings.PRIVATE_MEDIA_ROOT))
    with pytest.raises(ValueError):
        task.validation_file.url  # noqa: B018 - private files have no URL
    # the register page renders the server-built calldata
    page = client.get(reverse("tasks:register", args=[task.pk]))
    assert page.status_code == 200 and b"tx-call" in page.content


def test_form_errors_are_shown(client):
    client.force_login(UserFactory())
    resp = client.post(reverse("tasks:create"), {**VALID, "rounds": "0"})
    assert resp.status_code == 200
    assert b"Rounds must be between 1 and 1000" in resp.content


def test_only_creator_can_cancel_or_register(client, task_factory, fake_deployment):
    task = task_factory()
    client.force_login(UserFactory())
    assert client.get(reverse("tasks:cancel", args=[task.pk])).status_code == 403
    assert (
        client.post(reverse("tasks:cancel-confirm", args=[task.pk]), {"tx_hash": "0x" + "1" * 64}).status_code
        == 403
    )
    assert (
        client.post(
            reverse("tasks:register-confirm", args=[task.pk]), {"tx_hash": "0x" + "1" * 64}
        ).status_code
        == 403
    )
    assert client.post(reverse("tasks:delete", args=[task.pk])).status_code == 403
    client.force_login(task.creator)
    assert client.get(reverse("tasks:cancel", args=[task.pk])).status_code == 200


def test_draft_can_be_deleted_by_creator(client, task_factory):
    task = task_factory(status=Task.Status.DRAFT, chain_task_id=None)
    client.force_login(task.creator)
    client.post(reverse("tasks:delete", args=[task.pk]))
    assert not Task.objects.filter(pk=task.pk).exists()


def test_drafts_are_private(client, task_factory):
    task = task_factory(status=Task.Status.DRAFT, chain_task_id=None)
    assert client.get(reverse("tasks:detail", args=[task.pk])).status_code == 404
    client.force_login(task.creator)
    assert client.get(reverse("tasks:detail", args=[task.pk])).status_code == 200


def test_detail_page(client, task_factory):
    task = task_factory()
    resp = client.get(reverse("tasks:detail", args=[task.pk]))
    assert resp.status_code == 200
    assert b"1 ETH" in resp.content and task.spec_hash.encode() in resp.content


def test_list_filters(client, task_factory):
    task_factory(model_kind="cnn", title="cnn-task")
    task_factory(model_kind="mlp", title="mlp-task", status=Task.Status.TRAINING)
    body = client.get(reverse("tasks:list"), {"model_kind": "cnn"}).content
    assert b"cnn-task" in body and b"mlp-task" not in body
    body = client.get(reverse("tasks:list"), {"status": "training"}).content
    assert b"mlp-task" in body and b"cnn-task" not in body


def test_list_query_count_is_constant(client, task_factory, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given 3 tasks
    task_factory.create_batch(3)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("tasks:list")).status_code == 200
    few = len(ctx.captured_queries)
    # when there are 30
    task_factory.create_batch(27)
    # then the page costs no more queries
    with django_assert_max_num_queries(few):
        resp = client.get(reverse("tasks:list"))
    assert len(resp.context["page"].object_list) == 20


def test_api_list_query_count_is_constant(task_factory, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    counts = []
    for n in (3, 30):
        Task.objects.all().delete()
        task_factory.create_batch(n)
        with CaptureQueriesContext(connection) as ctx:
            assert APIClient().get("/api/v1/tasks/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_identity_page(client):
    client.force_login(UserFactory())
    assert client.get(reverse("tasks:identity")).status_code == 200


def test_training_section_and_start_button_come_from_training(client, task_factory):
    # given: a recruiting task on chain, seen by its creator
    task = task_factory()
    client.force_login(task.creator)
    # when
    body = client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    # then: training's section is on the page, its button posts to the same URL as before
    start = reverse("training:task-start", args=[task.pk])
    assert start == f"/tasks/{task.pk}/training/start/"
    assert "<h2>Training</h2>" in body and f"Round 0 of {task.rounds}" in body
    assert f'action="{start}"' in body
    assert (
        body.index("<h2>Participants</h2>") < body.index("<h2>Training</h2>") < body.index("On-chain records")
    )


def test_only_the_creator_can_start_training(client, task_factory):
    task = task_factory()
    client.force_login(UserFactory())
    assert client.post(reverse("training:task-start", args=[task.pk])).status_code == 403
    assert client.post(reverse("training:task-start", args=[99999])).status_code == 404
