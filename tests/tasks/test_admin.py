"""Admin smoke test over EVERY model registered in the project."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", list(admin.site._registry), ids=lambda m: f"{m._meta.app_label}.{m._meta.model_name}"
)
def test_changelist_and_add_render(admin_client, model):
    info = (model._meta.app_label, model._meta.model_name)
    assert admin_client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist")).status_code == 200
    model_admin = admin.site._registry[model]
    resp = admin_client.get(reverse(f"admin:{info[0]}_{info[1]}_add"))
    assert resp.status_code == (200 if model_admin.has_add_permission(_request(admin_client)) else 403)


def _request(admin_client):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="admin")
    return request


def test_task_admin_with_rows(admin_client, task_factory):
    task = task_factory()
    assert admin_client.get(reverse("admin:tasks_task_change", args=[task.pk])).status_code == 200


def test_admin_mark_failed_action(admin_client, task_factory):
    task = task_factory()
    admin_client.post(
        reverse("admin:tasks_task_changelist"), {"action": "mark_failed", "_selected_action": [task.pk]}
    )
    task.refresh_from_db()
    assert task.status == "failed" and "admin" in task.status_note


def test_admin_ban_and_lift_actions(admin_client):
    from tasks.models import Ban
    from tasks.services import identity_for_wallet
    from tests.tasks.factories import wallet

    identity = identity_for_wallet(address=wallet(1).address)
    admin_client.post(
        reverse("admin:tasks_identity_changelist"),
        {"action": "ban_30_days", "_selected_action": [identity.pk]},
    )
    ban = Ban.objects.get()
    assert ban.is_active() and ban.ban_tx is not None
    changelist = reverse("admin:tasks_ban_changelist")
    # the action first asks for a reason
    page = admin_client.post(changelist, {"action": "lift", "_selected_action": [ban.pk]})
    assert page.status_code == 200 and b"lift_reason" in page.content
    ban.refresh_from_db()
    assert ban.lifted_at is None
    # a too-short reason lifts nothing
    admin_client.post(
        changelist, {"action": "lift", "_selected_action": [ban.pk], "apply": "1", "lift_reason": "x"}
    )
    ban.refresh_from_db()
    assert ban.lifted_at is None
    # with a reason, the ban is lifted and the lift goes through the ledger
    admin_client.post(
        changelist,
        {
            "action": "lift",
            "_selected_action": [ban.pk],
            "apply": "1",
            "lift_reason": "Appeal upheld: data was fine",
        },
    )
    ban.refresh_from_db()
    assert ban.lifted_at is not None
    assert ban.lift_reason == "Appeal upheld: data was fine"
    assert ban.lift_tx is not None


SERVICE_WRITTEN = [
    "contracts.chaintx",
    "contracts.chainevent",
    "contracts.deployment",
    "contracts.eventcursor",
    "contracts.signerlock",
    "training.round",
    "training.update",
    "training.run",
    "training.noderegistration",
    "tasks.task",
    "tasks.participation",
    "tasks.identity",
    "tasks.identitywallet",
    "bcfl_site.workerheartbeat",
]


@pytest.mark.parametrize("label", SERVICE_WRITTEN)
def test_service_written_rows_are_view_only_in_admin(admin_client, label):
    # given: a superuser and a model whose rows only services write
    from django.apps import apps

    model = apps.get_model(label)
    model_admin = admin.site._registry[model]
    request = _request(admin_client)
    # then: no add, change or delete, but the rows can be viewed
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    assert admin_client.get(reverse(f"{info}_add")).status_code == 403
    assert admin_client.post(reverse(f"{info}_add"), {}).status_code == 403
    assert "delete_selected" not in model_admin.get_actions(request)


def test_view_only_change_page_refuses_edits(admin_client):
    # given: a ledger row
    from contracts.models import ChainTx

    tx = ChainTx.objects.create(
        idempotency_key="k-1", chain_id=31337, contract_name="TaskRegistry", function="commitRound", args=[]
    )
    url = reverse("admin:contracts_chaintx_change", args=[tx.pk])
    # when / then: the page shows it, read-only; a POST is refused; delete is refused
    page = admin_client.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.post(url, {"status": "confirmed"}).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:contracts_chaintx_delete", args=[tx.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    tx.refresh_from_db()
    assert tx.status == ChainTx.Status.QUEUED
    # the ledger's own action (which goes through the chain job) is still offered
    assert "retry_or_reconcile" in admin.site._registry[ChainTx].get_actions(_request(admin_client))


def test_bans_can_be_added_but_not_changed_or_deleted(admin_client):
    from tasks.models import Ban

    model_admin = admin.site._registry[Ban]
    request = _request(admin_client)
    assert model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
