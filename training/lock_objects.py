"""Row locks of the training domain, in the one order every service takes them.

Lock order (parent before child, rows of one kind by pk):

    Task  ->  Finalization  ->  Run  ->  Round

A service that needs several of these locks takes them top to bottom, never the other way round, so two
workers can never wait on each other (deadlock). Every helper must be called inside `transaction.atomic()`;
on SQLite `select_for_update` is a no-op (SQLite serialises writers itself).
"""

from __future__ import annotations

from tasks.models import Task
from training.models import Finalization, Run


def task_lock(*, task_id: int) -> Task:
    """The task row, locked (SELECT ... FOR UPDATE). Raises Task.DoesNotExist."""
    return Task.objects.select_for_update().get(pk=task_id)


def finalization_lock(*, task_id: int) -> Finalization:
    """The task's finalization row, created if missing, then locked. Take the task lock first if needed."""
    Finalization.objects.get_or_create(task_id=task_id)
    return Finalization.objects.select_for_update().get(task_id=task_id)


def run_lock(*, run_id: int) -> Run:
    """The run row, locked; rounds of its task are written only under it. Raises Run.DoesNotExist."""
    return Run.objects.select_for_update().get(pk=run_id)
