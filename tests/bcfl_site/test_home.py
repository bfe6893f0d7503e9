"""The home page for people (tasks recruiting, trained models, earnings, how it works) and the status page's
links (footer, admin)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tasks.models import Task
from tests.tasks.factories import ParticipationFactory, TaskFactory
from tests.training.factories import FinalModelFactory, RoundFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


def _completed_model(title: str, accuracy: float):
    task = TaskFactory(title=title, status=Task.Status.COMPLETED)
    return FinalModelFactory(source_round=RoundFactory(run__task=task, accuracy=accuracy))


def test_home_lists_recruiting_tasks_and_completed_models(client):
    # given: a recruiting task with one participant, a completed model, and tasks that must not show
    open_task = TaskFactory(title="Digits for clinics", max_participants=8, min_participants=2)
    ParticipationFactory(task=open_task)
    done = _completed_model("Handwriting v1", accuracy=0.9234)
    TaskFactory(title="Still training", status=Task.Status.TRAINING)
    _completed_model("Never shown", accuracy=0.5)
    Task.objects.filter(title="Never shown").update(status=Task.Status.FAILED)  # a final model, task not done
    # when
    body = client.get(reverse("home")).content.decode()
    # then: the recruiting task with its reward and head count, linked
    assert "Digits for clinics" in body
    assert reverse("tasks:detail", args=[open_task.pk]) in body
    assert "1 ETH" in body and "1 joined of 8" in body
    # and the completed model with its accuracy, task page and token metadata
    assert "Handwriting v1" in body and "92.3 %" in body
    assert reverse("tasks:detail", args=[done.task.pk]) in body
    assert f'href="/api/nft/{done.task.chain_task_id}"' in body
    assert "Still training" not in body and "Never shown" not in body
    # and the explanations
    assert "Shapley" in body and "banned" in body and "How it works" in body


def test_home_empty_states(client):
    body = client.get(reverse("home")).content.decode()
    assert "No task is recruiting right now." in body
    assert "No model has finished training yet." in body


def test_home_query_count_does_not_grow_with_rows(client, django_assert_num_queries):
    # given: several recruiting tasks with participants and several completed models
    for i in range(3):
        task = TaskFactory(title=f"Open {i}")
        ParticipationFactory(task=task)
        _completed_model(f"Model {i}", accuracy=0.8)
    # then: two queries, recruiting tasks (with counts) and completed models (with task and round)
    with django_assert_num_queries(2):
        resp = client.get(reverse("home"))
    assert resp.status_code == 200
    assert resp.content.decode().count("/api/nft/") == 3


def test_home_does_not_show_system_status_but_links_it(client):
    body = client.get(reverse("home")).content.decode()
    assert "Latest block" not in body and "Last heartbeat" not in body
    assert f'href="{reverse("status")}"' in body  # footer


def test_admin_links_the_status_page(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("status")}"' in body and "System status" in body


def test_my_stakes_nav_link_only_for_signed_in(client, admin_client):
    assert reverse("stakes:mine") not in client.get(reverse("home")).content.decode()
    assert "My stakes" in admin_client.get(reverse("home")).content.decode()
