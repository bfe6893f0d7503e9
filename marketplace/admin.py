from django.contrib import admin

from marketplace import token_columns
from marketplace.models import Licence, LicenceTerms, Listing, ModelToken, NFTSale, Purchase


class _TokenHistoryAdmin(admin.ModelAdmin):
    """A row of a token's history edited or deleted here: the token's list columns follow, as after a record."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        token_columns.refresh([obj.token_id])

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        token_columns.refresh([obj.token_id])

    def delete_queryset(self, request, queryset):
        token_ids = set(queryset.values_list("token_id", flat=True))
        super().delete_queryset(request, queryset)
        token_columns.refresh(token_ids)


@admin.register(ModelToken)
class ModelTokenAdmin(admin.ModelAdmin):
    list_display = ("token_id", "task", "owner", "owner_block", "minted_at")
    readonly_fields = token_columns.COLUMNS  # kept by the record functions
    search_fields = ("owner", "task__title")
    list_select_related = ("task",)


@admin.register(Listing)
class ListingAdmin(_TokenHistoryAdmin):
    list_display = ("token", "seller", "price_wei", "active", "tx_hash", "updated_at")
    list_filter = ("active",)
    list_select_related = ("token",)


@admin.register(LicenceTerms)
class LicenceTermsAdmin(_TokenHistoryAdmin):
    list_display = ("token", "set_by", "price_wei", "duration_s", "terms_hash", "active")
    list_filter = ("active",)
    list_select_related = ("token",)


@admin.register(Licence)
class LicenceAdmin(_TokenHistoryAdmin):
    list_display = ("licence_id", "token", "buyer", "price_wei", "expires_at", "tx_hash")
    search_fields = ("buyer", "tx_hash")
    list_select_related = ("token",)


@admin.register(NFTSale)
class NFTSaleAdmin(_TokenHistoryAdmin):
    list_display = ("token", "seller", "buyer", "price_wei", "royalty_wei", "tx_hash")
    list_select_related = ("token",)


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ("tx_hash", "kind", "token", "buyer", "price_wei", "source", "created_at")
    list_filter = ("kind", "source")
    list_select_related = ("token",)
