"""``manage.py create_task`` run several times gives tasks the list can tell apart."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from tasks.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_anvil(anvil, settings, tmp_path):
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = anvil.url, 31337
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    call_command("deploy_contracts", "--redeploy-missing")
    return anvil


def test_tasks_made_by_create_task_have_distinct_titles(on_anvil, client):
    # when: the same command runs three times (twice on digits, once on wine)
    for args in (["--dev-key", "6"], ["--dev-key", "6"], ["--dev-key", "6", "--dataset", "wine"]):
        call_command(
            "create_task", *args, "--min-participants", "2", "--reward-eth", "0.01", stdout=io.StringIO()
        )
    # then: three different titles, numbered per dataset, and the list shows three different rows
    titles = list(Task.objects.order_by("pk").values_list("title", flat=True))
    assert titles == [
        "Digits demo #1: mlp, 3 rounds, FedAvg",
        "Digits demo #2: mlp, 3 rounds, FedAvg",
        "Wine demo #1: mlp, 3 rounds, FedAvg",
    ]
    html = client.get(reverse("tasks:list")).content.decode()
    assert all(html.count(f">{t}</a>") == 1 for t in titles)


def test_an_explicit_title_is_kept(on_anvil):
    call_command(
        "create_task",
        "--dev-key",
        "6",
        "--title",
        "My digits",
        "--min-participants",
        "2",
        "--reward-eth",
        "0.01",
        stdout=io.StringIO(),
    )
    assert Task.objects.get().title == "My digits"
