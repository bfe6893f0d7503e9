"""Read side of the task domain: constant query counts per page (select_related + annotated counts)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from eth_utils import is_address, to_checksum_address

from tasks.models import COUNTED_PARTICIPATIONS, Ban, Identity, IdentityWallet, Participation, Task


def _counted() -> Q:
    return Q(participations__status__in=COUNTED_PARTICIPATIONS)


def task_list(
    *, status: str | None = None, model_kind: str | None = None, public_only: bool = True
) -> QuerySet[Task]:
    """Tasks with creator and participant count in one query; drafts are private to their creator."""
    qs = Task.objects.select_related("creator").annotate(
        participant_count=Count("participations", filter=_counted())
    )
    if public_only:
        qs = qs.exclude(status__in=(Task.Status.DRAFT, Task.Status.REGISTERING))
    if status:
        qs = qs.filter(status=status)
    if model_kind:
        qs = qs.filter(model_kind=model_kind)
    return qs.order_by("-created_at", "-pk")


def task_list_of_creator(*, user) -> QuerySet[Task]:
    return task_list(public_only=False).filter(creator=user)


def task_get(*, pk: int) -> Task:
    return task_list(public_only=False).get(pk=pk)


def task_participations(*, task: Task) -> QuerySet[Participation]:
    return task.participations.select_related("identity", "user").order_by("joined_at", "pk")


def task_chain_records(*, task: Task) -> list:
    """Ledger transactions the platform sent for this task (ChainTx.task_ref == str(task.pk))."""
    from contracts.models import ChainTx

    return list(ChainTx.objects.filter(task_ref=str(task.pk)).order_by("created_at", "pk"))


def task_gas_spent(*, task: Task, records: list | None = None) -> dict:
    """Fees in wei: what the platform paid for the task's transactions, and what the creator paid to create it.

    Summed in Python: a task has few transactions and wei products overflow SQLite's numeric types.
    """
    records = task_chain_records(task=task) if records is None else records
    platform = sum(
        int(r.gas_used) * int(r.effective_gas_price)
        for r in records
        if r.gas_used is not None and r.effective_gas_price is not None
    )
    gas_units = sum(int(r.gas_used) for r in records if r.gas_used is not None)
    creator = int(task.create_fee_wei or 0)
    return {
        "platform_wei": platform,
        "platform_gas": gas_units,
        "creator_wei": creator,
        "total_wei": platform + creator,
    }


def participations_of_user(*, user) -> QuerySet[Participation]:
    return Participation.objects.filter(user=user).select_related("task", "identity").order_by("-joined_at")


def task_counted_participations(*, task: Task) -> int:
    """How many participations hold a place in the task (joined, training or completed)."""
    return Participation.objects.filter(task=task, status__in=COUNTED_PARTICIPATIONS).count()


def task_participation_of_person(*, task: Task, wallet: str, identity_ids: list[int]) -> Participation | None:
    """The task's participation of this wallet or of any of the person's identities, if any."""
    return (
        Participation.objects.filter(task=task)
        .filter(Q(wallet=wallet) | Q(identity_id__in=identity_ids))
        .order_by("pk")
        .first()
    )


def identity_root(*, identity: Identity) -> Identity:
    """The person's identity: follows `merged_into` to the end (a cycle stops where it repeats)."""
    seen = set()
    while identity.merged_into_id is not None and identity.pk not in seen:
        seen.add(identity.pk)
        identity = identity.merged_into
    return identity


def identity_group_ids(*, identity: Identity) -> list[int]:
    """Pks of the person's identity and of every identity merged into it."""
    root = identity_root(identity=identity)
    return [root.pk, *Identity.objects.filter(merged_into=root).values_list("pk", flat=True)]


def identity_active_ban(*, identity: Identity) -> Ban | None:
    """The person's active ban (all merged identities): a permanent one first, else the latest expiry."""
    bans = (
        Ban.objects.active()
        .filter(identity_id__in=identity_group_ids(identity=identity))
        .select_related("task")
    )
    permanent = bans.filter(expires_at__isnull=True).first()
    return permanent or bans.order_by("-expires_at").first()


def identity_of_wallet(*, address: str) -> Identity | None:
    """Read-only: the person behind a wallet (its root identity), without creating anything; None if unknown."""
    if not is_address(address or ""):
        return None
    link = (
        IdentityWallet.objects.select_related("identity").filter(address=to_checksum_address(address)).first()
    )
    return identity_root(identity=link.identity) if link else None


def identity_bans(*, identity: Identity) -> QuerySet[Ban]:
    return (
        Ban.objects.filter(identity_id__in=identity_group_ids(identity=identity))
        .select_related("task")
        .order_by("-created_at")
    )


def wallet_active_ban(*, address: str) -> Ban | None:
    identity = identity_of_wallet(address=address)
    return identity_active_ban(identity=identity) if identity else None
