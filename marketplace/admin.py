from django.contrib import admin

from marketplace.models import Licence, LicenceTerms, Listing, ModelToken, NFTSale, Purchase


@admin.register(ModelToken)
class ModelTokenAdmin(admin.ModelAdmin):
    list_display = ("token_id", "task", "owner", "owner_block", "minted_at")
    search_fields = ("owner", "task__title")
    list_select_related = ("task",)


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ("token", "seller", "price_wei", "active", "tx_hash", "updated_at")
    list_filter = ("active",)
    list_select_related = ("token",)


@admin.register(LicenceTerms)
class LicenceTermsAdmin(admin.ModelAdmin):
    list_display = ("token", "set_by", "price_wei", "duration_s", "terms_hash", "active")
    list_filter = ("active",)
    list_select_related = ("token",)


@admin.register(Licence)
class LicenceAdmin(admin.ModelAdmin):
    list_display = ("licence_id", "token", "buyer", "price_wei", "expires_at", "tx_hash")
    search_fields = ("buyer", "tx_hash")
    list_select_related = ("token",)


@admin.register(NFTSale)
class NFTSaleAdmin(admin.ModelAdmin):
    list_display = ("token", "seller", "buyer", "price_wei", "royalty_wei", "tx_hash")
    list_select_related = ("token",)


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ("tx_hash", "kind", "token", "buyer", "price_wei", "source", "created_at")
    list_filter = ("kind", "source")
    list_select_related = ("token",)
