from django.utils import timezone

from bcfl_site.models import WorkerHeartbeat


def worker_heartbeat_record(*, queue: str, hostname: str) -> WorkerHeartbeat:
    obj, _ = WorkerHeartbeat.objects.update_or_create(
        queue=queue, defaults={"hostname": hostname, "seen_at": timezone.now()}
    )
    return obj
