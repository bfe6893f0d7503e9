"""Read side of the home page (tasks recruiting, completed models), the status page and the health check."""

from __future__ import annotations

import socket
from datetime import timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.utils import timezone

from bcfl_site.models import WorkerHeartbeat

QUEUES = ("default", "chain", "training")
HEARTBEAT_STALE_AFTER = timedelta(seconds=45)


def database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)}


def broker_status() -> dict:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return {"ok": True, "kind": "embedded (filesystem)"}
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5
        ) as s:
            if parsed.scheme.startswith("redis"):
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
                if not reply.startswith((b"+PONG", b"-NOAUTH")):
                    return {"ok": False, "kind": parsed.scheme, "error": reply.decode(errors="replace")}
        return {"ok": True, "kind": parsed.scheme}
    except OSError as exc:
        return {"ok": False, "kind": parsed.scheme, "error": str(exc)}


def superlink_status() -> dict:
    """Is the Flower SuperLink accepting connections at SUPERLINK_ADDRESS (TLS gRPC/HTTP port)?"""
    address = settings.SUPERLINK_ADDRESS
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
            return {"ok": True, "address": address}
    except (OSError, ValueError) as exc:
        return {"ok": False, "address": address, "error": str(exc)}


def worker_status() -> list[dict]:
    seen = {hb.queue: hb for hb in WorkerHeartbeat.objects.filter(queue__in=QUEUES)}
    now = timezone.now()
    rows = []
    for queue in QUEUES:
        hb = seen.get(queue)
        rows.append(
            {
                "queue": queue,
                "ok": bool(hb and now - hb.seen_at <= HEARTBEAT_STALE_AFTER),
                "seen_at": hb.seen_at if hb else None,
                "hostname": hb.hostname if hb else "",
            }
        )
    return rows


def chain_status() -> dict:
    from contracts import chain

    status = chain.chain_status()
    # Reachable and on the configured chain id; a node on another chain is an error, not "up".
    status["ok"] = bool(status.get("connected")) and not status.get("error")
    return status


def deployments() -> list:
    from contracts.models import Deployment

    return list(Deployment.objects.filter(chain_id=settings.CHAIN_ID).order_by("name"))


HOME_LIST_LIMIT = 12


def recruiting_tasks(*, limit: int = HOME_LIST_LIMIT) -> list:
    """Tasks recruiting now, newest first, with `participant_count` (joined, counted) annotated: one query."""
    from tasks import selectors as task_selectors
    from tasks.models import Task

    return list(task_selectors.task_list(status=Task.Status.RECRUITING)[:limit])


def _model_url(task) -> str:
    from django.core.exceptions import ObjectDoesNotExist
    from django.urls import reverse

    try:
        token = task.model_token
    except ObjectDoesNotExist:
        return ""
    return reverse("marketplace:detail", args=[token.token_id])


def completed_models(*, limit: int = HOME_LIST_LIMIT) -> list[dict]:
    """Trained models of completed tasks, newest first: one query (final model, task, its last round).

    Each item: {"task": Task, "title": str, "accuracy": float | None (0..1, the final round's validation
    accuracy), "accuracy_percent": float | None, "task_url": str, "nft_url": str ("" without an on-chain id; `/api/nft/<chain_task_id>`,
    the ERC-721 token metadata), "model_url": str (the marketplace's model page, "" before the NFT is minted)}. Extend the queryset and the dict here to show more per model.
    """
    from django.urls import reverse

    from tasks.models import Task
    from training.models import FinalModel

    finals = (
        FinalModel.objects.filter(task__status=Task.Status.COMPLETED)
        .select_related("task", "source_round", "task__model_token")
        .order_by("-created_at", "-pk")[:limit]
    )
    out = []
    for fm in finals:
        task = fm.task
        out.append(
            {
                "task": task,
                "title": task.title,
                "accuracy": fm.source_round.accuracy,
                "accuracy_percent": None
                if fm.source_round.accuracy is None
                else 100 * fm.source_round.accuracy,
                "task_url": reverse("tasks:detail", args=[task.pk]),
                "model_url": _model_url(task),
                "nft_url": (
                    reverse("metadata:nft", args=[task.chain_task_id])
                    if task.chain_task_id is not None
                    else ""
                ),
            }
        )
    return out
