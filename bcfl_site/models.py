from django.db import models


class WorkerHeartbeat(models.Model):
    """Last time a Celery worker serving `queue` ran the heartbeat job (shown on the home page)."""

    queue = models.CharField(max_length=32, unique=True)
    hostname = models.CharField(max_length=200, blank=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.queue} @ {self.seen_at:%H:%M:%S}"
