"""Row locks of the task domain, taken in one order by every service: Task, then Participation, then Identity,
then Ban (parent before child; several rows of one model in pk order). A service that needs two of these
takes them in this order, so two services never wait for each other (no deadlock).

Call inside `transaction.atomic()`; the lock is held until that transaction ends. SQLite ignores
`SELECT ... FOR UPDATE` (it locks the whole database on write instead); PostgreSQL takes row locks.
"""

from __future__ import annotations

from tasks.models import Ban, Identity, Task


def task_lock(*, task_id: int) -> Task:
    """The task row, re-read under `SELECT ... FOR UPDATE`. Raises `Task.DoesNotExist`."""
    return Task.objects.select_for_update().get(pk=task_id)


def identities_lock(*, identity_ids: list[int]) -> dict[int, Identity]:
    """The identity rows (pk order), re-read under lock: {pk: Identity}. Missing pks are left out."""
    rows = Identity.objects.select_for_update().filter(pk__in=set(identity_ids)).order_by("pk")
    return {row.pk: row for row in rows}


def ban_lock(*, ban_id: int) -> Ban:
    """The ban row with its identity, re-read under lock. Raises `Ban.DoesNotExist`."""
    return Ban.objects.select_for_update(of=("self",)).select_related("identity").get(pk=ban_id)
