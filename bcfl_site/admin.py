from django.contrib import admin

from bcfl_site.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("queue", "hostname", "seen_at")
    readonly_fields = ("queue", "hostname", "seen_at")
