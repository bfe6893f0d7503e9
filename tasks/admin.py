"""Admin: every task-domain model, with status/ban/identity actions that go through the services.

Tasks, participations and identities are written only by `tasks.services` (from signed wallet actions), so
their admins are view-only; the actions (mark failed, ban, lift) call the services.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone

from contracts.admin import ServiceWrittenAdmin
from tasks import services
from tasks.models import Ban, Identity, IdentityWallet, Participation, Task, TrustedIssuer


class ParticipationInline(admin.TabularInline):
    model = Participation
    extra = 0
    fields = ["wallet", "identity", "status", "joined_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(ServiceWrittenAdmin):
    list_display = [
        "id",
        "title",
        "creator",
        "status",
        "model_kind",
        "aggregation_rule",
        "reward_eth",
        "participant_count",
        "rounds",
        "chain_task_id",
        "created_at",
    ]
    list_filter = ["status", "model_kind", "aggregation_rule", "requires_credential"]
    search_fields = ["title", "creator__username", "spec_hash", "create_tx_hash"]
    list_select_related = ["creator"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "status",
        "status_note",
        "spec_hash",
        "spec_salt",
        "validation_sha256",
        "chain_id",
        "chain_task_id",
        "create_tx_hash",
        "create_fee_wei",
        "cancel_tx_hash",
        "registered_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["validation_file"]  # private: no URL to link to; shown by name only
    inlines = [ParticipationInline]
    actions = ["mark_failed"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "validation_file_name"]

    @admin.display(description="validation set (private storage)")
    def validation_file_name(self, obj):
        return obj.validation_file.name if obj and obj.validation_file else "-"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_participants=Count("participations"))

    @admin.display(ordering="_participants", description="participants")
    def participant_count(self, obj):
        return obj._participants

    @admin.display(ordering="reward_wei", description="reward (ETH)")
    def reward_eth(self, obj):
        return obj.reward_eth

    @admin.action(
        description="Mark failed (the escrow stays on chain: only the creator's wallet can cancel and refund)"
    )
    def mark_failed(self, request, queryset):
        done = 0
        for task in queryset:
            try:
                services.task_mark_failed(task=task, reason="stopped by an admin", by=request.user)
                done += 1
            except services.TaskStateError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"{done} task(s) marked failed.")


@admin.register(Participation)
class ParticipationAdmin(ServiceWrittenAdmin):
    list_display = ["id", "task", "wallet", "identity", "status", "joined_at"]
    list_filter = ["status"]
    search_fields = ["wallet", "identity__did", "task__title"]
    list_select_related = ["task", "identity"]
    readonly_fields = [
        "task",
        "user",
        "wallet",
        "identity",
        "node_public_key",
        "node_public_key_hash",
        "data_summary",
        "data_summary_hash",
        "join_signature",
        "joined_at",
    ]


class IdentityWalletInline(admin.TabularInline):
    model = IdentityWallet
    extra = 0
    readonly_fields = ["address", "linked_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Identity)
class IdentityAdmin(ServiceWrittenAdmin):
    list_display = [
        "id",
        "did",
        "kind",
        "issuer",
        "credential_expires_at",
        "merged_into",
        "wallet_count",
        "created_at",
    ]
    list_filter = ["kind", "issuer"]
    search_fields = ["did", "nullifier", "wallets__address"]
    list_select_related = ["issuer", "merged_into"]
    readonly_fields = [
        "did",
        "kind",
        "nullifier",
        "issuer",
        "credential",
        "credential_expires_at",
        "merged_into",
        "created_at",
    ]
    inlines = [IdentityWalletInline]
    actions = ["ban_30_days", "ban_permanently"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_wallets=Count("wallets"))

    @admin.display(ordering="_wallets", description="wallets")
    def wallet_count(self, obj):
        return obj._wallets

    def _ban(self, request, queryset, expires_at):
        for identity in queryset:
            services.ban_create(
                identity=identity,
                task=None,
                reason=f"Banned by admin {request.user.username}",
                evidence={"admin": request.user.username, "source": "admin action"},
                expires_at=expires_at,
                by=request.user,
            )
        self.message_user(request, f"{queryset.count()} identity(ies) banned; the bans are sent on chain.")

    @admin.action(description="Ban for 30 days (edit the ban afterwards to add evidence)")
    def ban_30_days(self, request, queryset):
        self._ban(request, queryset, timezone.now() + timedelta(days=30))

    @admin.action(description="Ban permanently")
    def ban_permanently(self, request, queryset):
        self._ban(request, queryset, None)


@admin.register(IdentityWallet)
class IdentityWalletAdmin(ServiceWrittenAdmin):
    list_display = ["address", "identity", "linked_at"]
    search_fields = ["address", "identity__did"]
    list_select_related = ["identity"]
    readonly_fields = ["address", "identity", "linked_at"]


@admin.register(TrustedIssuer)
class TrustedIssuerAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "address"]
    actions = ["deactivate"]

    @admin.action(description="Deactivate (their credentials are no longer accepted for new links)")
    def deactivate(self, request, queryset):
        queryset.update(active=False)


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """New bans are created through `ban_create` (which also sends them on chain); lifting via the action.

    A ban once sent is a chain record: it cannot be changed or deleted here, only lifted.
    """

    list_display = [
        "id",
        "identity",
        "task",
        "reason",
        "expires_at",
        "is_active_now",
        "lifted_at",
        "ban_tx_status",
        "created_at",
    ]
    list_filter = ["lifted_at", "expires_at"]
    search_fields = ["identity__did", "identity__wallets__address", "reason"]
    list_select_related = ["identity", "task", "ban_tx"]
    raw_id_fields = ["identity", "task"]
    actions = ["lift"]

    def get_readonly_fields(self, request, obj=None):
        base = [
            "evidence_hash",
            "created_at",
            "created_by",
            "lifted_at",
            "lift_reason",
            "lifted_by",
            "ban_tx",
            "lift_tx",
        ]
        if obj is not None:  # the chain record is immutable: change nothing that was sent
            return [*base, "identity", "task", "reason", "evidence", "expires_at"]
        return base

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="active")
    def is_active_now(self, obj):
        return obj.is_active()

    @admin.display(description="chain tx")
    def ban_tx_status(self, obj):
        return obj.ban_tx.status if obj.ban_tx else "-"

    def save_model(self, request, obj, form, change):
        if change:
            return
        ban = services.ban_create(
            identity=obj.identity,
            task=obj.task,
            reason=obj.reason,
            evidence=obj.evidence,
            expires_at=obj.expires_at,
            by=request.user,
        )
        obj.pk = ban.pk

    @admin.action(description="Lift the selected bans (also on chain)…")
    def lift(self, request, queryset):
        """Asks for the reason first (it is hashed and sent with `IdentityRegistry.lift`)."""
        active = [ban for ban in queryset if ban.lifted_at is None]
        reason = (request.POST.get("lift_reason") or "").strip()
        if "apply" in request.POST:
            if len(reason) < 5:
                self.message_user(request, "Give a reason of at least 5 characters.", level=messages.ERROR)
            else:
                for ban in active:
                    services.ban_lift(ban=ban, reason=reason, by=request.user)
                self.message_user(request, f"{len(active)} ban(s) lifted; the lift is being sent on chain.")
                return None
        return render(
            request,
            "admin/tasks/ban/lift.html",
            {
                **self.admin_site.each_context(request),
                "title": "Lift bans",
                "bans": active,
                "queryset": queryset,
                "reason": reason,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )
