"""Admin for training records: all written by `training.services` (from the ServerApp's round file), view-only."""

from django.contrib import admin

from contracts.admin import ServiceWrittenAdmin
from training.models import Contribution, FinalModel, NodeRegistration, OnnxExport, Round, Run, Update


@admin.register(NodeRegistration)
class NodeRegistrationAdmin(ServiceWrittenAdmin):
    list_display = ["node_id", "wallet", "status", "registered_at", "unregistered_at"]
    list_filter = ["status"]
    search_fields = ["wallet", "public_key_hash", "node_id"]
    readonly_fields = [
        "public_key_hash",
        "public_key",
        "wallet",
        "identity",
        "node_id",
        "created_at",
        "registered_at",
        "unregistered_at",
        "updated_at",
    ]


@admin.register(Run)
class RunAdmin(ServiceWrittenAdmin):
    list_display = [
        "task",
        "attempt",
        "flower_run_id",
        "status",
        "flower_status",
        "resume_from_round",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["task__title", "flower_run_id"]
    raw_id_fields = ["task"]


class UpdateInline(admin.TabularInline):
    model = Update
    extra = 0
    can_delete = False
    fields = ["leaf_index", "node_id", "wallet", "accepted", "reason", "score_uint", "update_sha256", "norm"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Round)
class RoundAdmin(ServiceWrittenAdmin):
    list_display = [
        "task",
        "number",
        "accuracy",
        "loss",
        "accepted_count",
        "rejected_count",
        "updates_root",
        "commit_tx",
    ]
    list_select_related = ["task", "commit_tx"]
    search_fields = ["task__title", "updates_root", "global_sha256"]
    raw_id_fields = ["task", "run", "commit_tx"]
    inlines = [UpdateInline]


@admin.register(Update)
class UpdateAdmin(ServiceWrittenAdmin):
    list_display = ["round", "node_id", "wallet", "accepted", "reason", "score_uint"]
    list_filter = ["accepted"]
    search_fields = ["wallet", "update_sha256"]
    raw_id_fields = ["round", "participation"]


@admin.register(FinalModel)
class FinalModelAdmin(ServiceWrittenAdmin):  # written only by the finalize chain
    list_display = ["task", "source_round", "sha256", "weights_sha256", "created_at"]
    list_select_related = ["task", "source_round"]
    search_fields = ["task__title", "sha256", "weights_sha256"]


@admin.register(Contribution)
class ContributionAdmin(ServiceWrittenAdmin):  # written only by the finalize chain
    list_display = ["task", "wallet", "cumulative", "accepted_rounds", "created_at"]
    list_select_related = ["task"]
    search_fields = ["task__title", "wallet"]


@admin.register(OnnxExport)
class OnnxExportAdmin(ServiceWrittenAdmin):
    list_display = [
        "final_model",
        "sha256",
        "opset",
        "max_abs_diff",
        "check_examples",
        "export_seconds",
        "created_at",
    ]
    readonly_fields = [
        "final_model",
        "file",
        "sha256",
        "source_sha256",
        "opset",
        "max_abs_diff",
        "check_examples",
        "export_seconds",
        "created_at",
    ]
