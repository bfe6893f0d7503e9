from django.contrib import admin

from bcfl_site.models import WorkerHeartbeat
from contracts.admin import ServiceWrittenAdmin


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ServiceWrittenAdmin):
    """Written by the workers' heartbeat job: view-only."""

    list_display = ("queue", "hostname", "seen_at")
    readonly_fields = ("queue", "hostname", "seen_at")
