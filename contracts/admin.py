"""Admin for the ledger. Every ledger row is written by a service or job, so the admin only shows them."""

from django.contrib import admin, messages

from contracts.models import ChainEvent, ChainTx, Deployment, EventCursor, SignerLock


class ServiceWrittenAdmin(admin.ModelAdmin):
    """View-only admin for rows that only services and jobs may write (ledger, chain events, rounds...).

    No add, change or delete form: a row typed in by hand would disagree with the chain or break an
    idempotency key. Admin actions (which call services) stay available to anyone who may view the rows.
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(ServiceWrittenAdmin):
    list_display = ["name", "chain_id", "address", "block_number", "deployed_at"]
    list_filter = ["chain_id", "name"]
    search_fields = ["name", "address", "tx_hash"]
    readonly_fields = ["deployed_at"]


@admin.register(ChainTx)
class ChainTxAdmin(ServiceWrittenAdmin):
    list_display = [
        "id",
        "status",
        "contract_name",
        "function",
        "idempotency_key",
        "nonce",
        "gas_used",
        "tx_hash",
        "task_ref",
        "created_at",
    ]
    list_filter = ["status", "chain_id", "contract_name", "function"]
    search_fields = ["idempotency_key", "tx_hash", "task_ref", "sender", "error_name"]
    readonly_fields = [
        "raw_tx",
        "tx_hash",
        "nonce",
        "sender",
        "block_number",
        "gas_used",
        "effective_gas_price",
        "error",
        "error_name",
        "attempts",
        "created_at",
        "updated_at",
        "confirmed_at",
    ]
    actions = ["retry_or_reconcile"]
    date_hierarchy = "created_at"

    @admin.action(description="Retry queued / reconcile signed+sent transactions")
    def retry_or_reconcile(self, request, queryset):
        from contracts.jobs import chain_tx_send

        ids = list(queryset.filter(status__in=["queued", "signed", "sent"]).values_list("id", flat=True))
        for tx_id in ids:
            chain_tx_send.delay(tx_id)
        self.message_user(
            request, f"Enqueued {len(ids)} transaction(s) on the chain queue.", messages.SUCCESS
        )


@admin.register(EventCursor)
class EventCursorAdmin(ServiceWrittenAdmin):
    list_display = ["chain_id", "last_block", "updated_at"]


@admin.register(ChainEvent)
class ChainEventAdmin(ServiceWrittenAdmin):
    list_display = ["block_number", "log_index", "contract_name", "event", "tx_hash"]
    list_filter = ["chain_id", "contract_name", "event"]
    search_fields = ["tx_hash", "address", "event"]
    readonly_fields = ["args"]


@admin.register(SignerLock)
class SignerLockAdmin(ServiceWrittenAdmin):
    list_display = ["address", "chain_id", "updated_at"]
