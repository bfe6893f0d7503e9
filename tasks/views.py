"""Server-rendered task pages. Views parse, authorise and call a service; they never set a status."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contracts.chain import ChainError
from contracts.wallet_tx import WalletTxError
from tasks import selectors, services
from tasks.decorators import login_required_to
from tasks.forms import CredentialForm, TaskCreateForm, TaskFilterForm, TxHashForm
from tasks.models import Task
from tasks.page_sections import task_detail_sections

PAGE_SIZE = 20


def _task_or_404(pk: int) -> Task:
    try:
        return selectors.task_get(pk=pk)
    except Task.DoesNotExist:
        raise Http404("No such task.") from None


def _visible(task: Task, user) -> bool:
    private = task.status in (Task.Status.DRAFT, Task.Status.REGISTERING)
    return not private or (user.is_authenticated and (user.pk == task.creator_id or user.is_staff))


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = selectors.task_list(
        status=filters.get("status") or None, model_kind=filters.get("model_kind") or None
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    mine = (
        selectors.task_list_of_creator(user=request.user).exclude(
            status__in=(
                Task.Status.RECRUITING,
                Task.Status.TRAINING,
                Task.Status.FINALIZING,
                Task.Status.COMPLETED,
                Task.Status.FAILED,
                Task.Status.CANCELLED,
            )
        )
        if request.user.is_authenticated
        else []
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "tasks/list.html",
        {"page": page, "form": form, "my_drafts": mine, "query": query.urlencode()},
    )


@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task_or_404(pk)
    if not _visible(task, request.user):
        raise Http404("No such task.")
    records = selectors.task_chain_records(task=task)
    my_ban = None
    my_participation = None
    if request.user.is_authenticated:
        my_ban = selectors.wallet_active_ban(address=request.user.username)
        my_participation = task.participations.filter(user=request.user).first()
    context = {
        "task": task,
        "participations": selectors.task_participations(task=task),
        "records": records,
        "gas": selectors.task_gas_spent(task=task, records=records),
        "spec_json": json.dumps(task.spec(), indent=2, sort_keys=True),
        "is_creator": request.user.is_authenticated and request.user.pk == task.creator_id,
        "my_ban": my_ban,
        "my_participation": my_participation,
        "can_cancel": task.status in services.CANCELLABLE and task.chain_task_id is not None,
    }
    for section in task_detail_sections.all():  # e.g. training's rounds and start button
        context[section.name] = section.context(request=request, task=task)
    context["sections"] = [section.template for section in task_detail_sections.all()]
    return render(request, "tasks/detail.html", context)


@login_required_to("create a task")
@require_http_methods(["GET", "POST"])
def task_create(request: HttpRequest) -> HttpResponse:
    form = TaskCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            task = services.task_create(creator=request.user, **form.service_kwargs())
        except ValidationError as exc:  # the form ran the same checks; this is a rule it could not see
            form.add_error(None, exc.messages)
        else:
            messages.info(request, "Task saved. Now register it on chain: your wallet escrows the reward.")
            return redirect("tasks:register", pk=task.pk)
    return render(request, "tasks/create.html", {"form": form})


def _creator_task(request: HttpRequest, pk: int) -> Task:
    task = _task_or_404(pk)
    if task.creator_id != request.user.pk:
        raise PermissionDenied("Only the task's creator can do this.")
    return task


@login_required_to("register your task on chain")
@require_GET
def task_register(request: HttpRequest, pk: int) -> HttpResponse:
    task = _creator_task(request, pk)
    if task.status not in (Task.Status.DRAFT, Task.Status.REGISTERING):
        return redirect("tasks:detail", pk=task.pk)
    try:
        call, chain_error = services.task_create_call(task=task), ""
    except ChainError as exc:
        call, chain_error = None, str(exc)
    return render(
        request,
        "tasks/register.html",
        {
            "task": task,
            "call": call,
            "chain_error": chain_error,
            "mode": "register",
            "start_url": reverse("tasks:register-start", args=[task.pk]),
            "abandon_url": reverse("tasks:register-abandon", args=[task.pk]),
            "confirm_url": reverse("tasks:register-confirm", args=[task.pk]),
        },
    )


def _json_error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"ok": False, "message": message}, status=status)


@login_required_to("register your task on chain")
@require_POST
def task_register_start(request: HttpRequest, pk: int) -> JsonResponse:
    task = _creator_task(request, pk)
    try:
        services.task_registration_start(task=task, by=request.user)
    except services.TaskStateError as exc:
        return _json_error(str(exc), 409)
    return JsonResponse({"ok": True, "status": task.status})


@login_required_to("register your task on chain")
@require_POST
def task_register_abandon(request: HttpRequest, pk: int) -> JsonResponse:
    task = _creator_task(request, pk)
    reason = (request.POST.get("reason") or "")[:300]
    try:
        services.task_registration_abandon(task=task, by=request.user, reason=reason)
    except services.TaskStateError as exc:
        return _json_error(str(exc), 409)
    return JsonResponse({"ok": True, "status": task.status})


def _confirm_wallet_tx(request: HttpRequest, pk: int, confirm, success) -> JsonResponse:
    """The page posts the hash of the transaction the creator's wallet sent; `confirm` checks its receipt."""
    task = _creator_task(request, pk)
    form = TxHashForm(request.POST)
    if not form.is_valid():
        return _json_error(" ".join(form.errors["tx_hash"]))
    try:
        confirm(task=task, tx_hash=form.cleaned_data["tx_hash"], by=request.user)
    except (WalletTxError, services.ChainConfirmationError, services.TaskStateError) as exc:
        return _json_error(str(exc))
    messages.success(request, success(task))
    return JsonResponse(
        {
            "ok": True,
            "status": task.status,
            "chain_task_id": task.chain_task_id,
            "redirect": reverse("tasks:detail", args=[task.pk]),
        }
    )


@login_required_to("register your task on chain")
@require_POST
def task_register_confirm(request: HttpRequest, pk: int) -> JsonResponse:
    return _confirm_wallet_tx(
        request,
        pk,
        services.task_registration_confirm,
        lambda task: f"Task registered on chain (task id {task.chain_task_id}); it is now recruiting.",
    )


@login_required_to("delete your draft task")
@require_POST
def task_delete(request: HttpRequest, pk: int) -> HttpResponse:
    task = _creator_task(request, pk)
    try:
        services.task_delete(task=task, by=request.user)
    except services.TaskStateError as exc:
        messages.error(request, str(exc))
        return redirect("tasks:detail", pk=pk)
    messages.success(request, "Draft deleted.")
    return redirect("tasks:list")


@login_required_to("cancel your task and get the reward pool back")
@require_GET
def task_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    task = _creator_task(request, pk)
    try:
        call, chain_error = services.task_cancel_call(task=task, by=request.user), ""
    except services.TaskStateError as exc:
        messages.error(request, str(exc))
        return redirect("tasks:detail", pk=pk)
    except ChainError as exc:
        call, chain_error = None, str(exc)
    return render(
        request,
        "tasks/register.html",
        {
            "task": task,
            "call": call,
            "chain_error": chain_error,
            "mode": "cancel",
            "confirm_url": reverse("tasks:cancel-confirm", args=[task.pk]),
        },
    )


@login_required_to("cancel your task and get the reward pool back")
@require_POST
def task_cancel_confirm(request: HttpRequest, pk: int) -> JsonResponse:
    return _confirm_wallet_tx(
        request,
        pk,
        services.task_cancel_confirm,
        lambda task: "Task cancelled; the reward pool was refunded to your wallet.",
    )


@login_required_to("see your identity, bans and participations")
@require_http_methods(["GET", "POST"])
def identity_mine(request: HttpRequest) -> HttpResponse:
    """The signed-in wallet's identity, its other wallets, bans (why and until when), and credential linking."""
    form = CredentialForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.identity_link_credential(
                wallet=request.user.username,
                credential=form.cleaned_data["credential"],
                signature=form.cleaned_data["signature"],
            )
        except services.CredentialError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Credential linked: your wallets now share one identity.")
            return redirect("tasks:identity")
    identity = selectors.identity_of_wallet(address=request.user.username)
    context = {
        "identity": identity,
        "wallets": identity.wallets.all() if identity else [],
        "bans": selectors.identity_bans(identity=identity) if identity else [],
        "active_ban": selectors.wallet_active_ban(address=request.user.username),
        "participations": selectors.participations_of_user(user=request.user),
        "form": form,
    }
    return render(request, "tasks/identity.html", context)
