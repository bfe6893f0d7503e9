"""A task's status: the state machine, the creator check, failing and deleting a task.

Nothing but these services (and the chain registration ones, through `task_transition`) writes `Task.status`.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from tasks import signals
from tasks.lock_objects import task_lock
from tasks.models import Task
from tasks.services.errors import TaskStateError

S = Task.Status
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.REGISTERING, S.CANCELLED}),
    S.REGISTERING: frozenset({S.DRAFT, S.RECRUITING, S.FAILED}),
    S.RECRUITING: frozenset({S.TRAINING, S.CANCELLED, S.FAILED}),
    S.TRAINING: frozenset({S.FINALIZING, S.FAILED}),
    S.FINALIZING: frozenset({S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
CANCELLABLE = (S.RECRUITING,)


def task_transition(*, task: Task, to: str, note: str | None = None) -> Task:
    """Move `task` to status `to` if the table allows it; re-entering the current status is a no-op.

    Locks the task row (re-read under the lock, so two workers cannot both move it); `task` is updated in
    place and returned. `note` (if given) replaces `status_note`. Raises TaskStateError for a move the table
    does not allow.
    """
    to = S(to)
    with transaction.atomic():
        locked = task_lock(task_id=task.pk)
        if locked.status == to:
            task.status = locked.status
            return task
        allowed = ALLOWED_TRANSITIONS[S(locked.status)]
        if to not in allowed:
            raise TaskStateError(
                f"Task #{task.pk} cannot go from {S(locked.status).label.lower()} to {to.label.lower()}"
                f" (allowed: {', '.join(sorted(allowed)) or 'none, it is final'})."
            )
        locked.status = to
        fields = ["status", "updated_at"]
        if note is not None:
            locked.status_note = note
            fields.append("status_note")
        locked.save(update_fields=fields)
        if to == S.FAILED:
            signals.task_failed.send(sender=Task, task=locked)
    task.status = to
    if note is not None:
        task.status_note = note
    return task


def require_creator(*, task: Task, user) -> None:
    """PermissionDenied unless `user` is the signed-in creator of `task`."""
    if user is None or not user.is_authenticated or task.creator_id != user.pk:
        raise PermissionDenied("Only the task's creator can do this.")


def task_mark_failed(*, task: Task, reason: str, by=None) -> Task:
    """Admin/platform: stop a task that cannot go on. Its escrow is then settled on chain (`task_failed`
    signal: contributors of committed rounds paid pro rata, the rest refunded to the creator)."""
    if task.status == S.FAILED:
        return task
    who = f" by {by.username}" if by is not None else ""
    return task_transition(task=task, to=S.FAILED, note=f"Marked failed{who}: {reason}")


def task_delete(*, task: Task, by) -> None:
    """Delete a draft (and, after commit, its validation file).

    Raises PermissionDenied for anyone but the creator, TaskStateError unless the task is a draft or when a
    TaskCreated event for its spec hash was indexed (it is on chain after all).
    """
    require_creator(task=task, user=by)
    if task.status != S.DRAFT:
        raise TaskStateError("Only a draft can be deleted; cancel a registered task instead.")
    from contracts.models import ChainEvent

    if ChainEvent.objects.filter(event="TaskCreated", args__specHash=task.spec_hash).exists():
        raise TaskStateError(
            "This task was registered on chain after all; it will show up as recruiting shortly."
        )
    storage, name = task.validation_file.storage, task.validation_file.name
    task.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))
