"""Training's part of the task pages: the "Training" section of the task page (registered in
`tasks.page_sections` by `TrainingConfig.ready()`) and the creator's "Start training now" button."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from contracts.chain.errors import ChainError
from tasks import selectors as task_selectors
from tasks.decorators import login_required_to
from tasks.models import Task
from tasks.page_sections import TaskPageSection
from training import holdings, selectors, task_page
from training.services import TrainingError, training_run_start


def task_training_section(*, request: HttpRequest, task: Task) -> dict:
    """Context of the task page's training parts: rounds so far, the chart, whether the creator may start training,
    `people` (`task_page.task_participants_page`) and `failure` (`task_page.failure_explanation`, None unless the
    task failed); the participant table and the failure notice are drawn by tasks/detail.html from it."""
    rounds = selectors.task_rounds(task=task)
    return {
        "rounds": rounds,
        "done": len(rounds),
        "chart": mark_safe(task_page.metrics_chart_svg(rounds)),  # noqa: S308 - built from numbers
        "can_start": task.status == Task.Status.RECRUITING and task.chain_task_id is not None,
        # the task page's participant table (states in words, totals equal to the round table's columns) and,
        # for a failed task, the failure in plain words with the technical detail apart
        "people": task_page.task_participants_page(task=task),
        "failure": task_page.failure_explanation(task=task),
        "contributions": task_page.contributions_page(task=task),
        "bans": task_page.bans_page(task=task),
        "settlement": task_page.settlement_page(task=task),
    }


TRAINING_SECTION = TaskPageSection(
    name="training", template="training/task_section.html", context=task_training_section
)


@login_required_to("start training of your task")
@require_POST
def task_training_start(request: HttpRequest, pk: int) -> HttpResponse:
    """The creator starts training before the task filled up (needs min participants with registered nodes)."""
    try:
        task = task_selectors.task_get(pk=pk)
    except Task.DoesNotExist:
        raise Http404("No such task.") from None
    if task.creator_id != request.user.pk:
        raise PermissionDenied("Only the task's creator can do this.")
    try:
        training_run_start(task=task, by=request.user)
    except TrainingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Training started: the platform is launching the Flower run.")
    return redirect("tasks:detail", pk=pk)


@login_required_to("see your stakes")
@require_GET
def my_stakes(request: HttpRequest) -> HttpResponse:
    """The signed-in wallet's stakes: shares, claimable and earned revenue, payouts, and claim buttons."""
    wallet = holdings.wallet_address(request.user.username)
    rows, chain_error = holdings.wallet_stakes(wallet=wallet)
    for h in rows:
        if not chain_error:
            try:
                h.calls = holdings.holding_calls(holding=h, wallet=wallet)
            except ChainError as exc:
                chain_error = holdings.chain_error_text(exc)
    return render(
        request,
        "training/my_stakes.html",
        {"wallet": wallet, "holdings": rows, "chain_error": chain_error},
    )
