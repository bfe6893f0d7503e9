"""Housekeeping jobs: worker heartbeats per queue, so the home page and /healthz can show worker status."""

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def heartbeat() -> None:
    """Fan a ping out to every queue; whichever worker serves the queue records it."""
    from bcfl_site.selectors import QUEUES

    for queue in QUEUES:
        heartbeat_record.apply_async(args=[queue], queue=queue, expires=30)


@shared_task(acks_late=True, ignore_result=True)
def heartbeat_record(queue: str) -> None:
    from bcfl_site.services import worker_heartbeat_record

    worker_heartbeat_record(queue=queue, hostname=heartbeat_record.request.hostname or "")
