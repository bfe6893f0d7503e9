"""The marketplace's records of on-chain facts (Marketplace.sol, ModelNFT.sol). Amounts in wei (Decimal, 78
digits), addresses checksummed, hashes 0x-prefixed lowercase. Rows are written only from verified receipts
(`contracts.wallet_tx`) or indexed events (`contracts.models.ChainEvent`), never from what a page says."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

WEI = {"max_digits": 78, "decimal_places": 0}


class ModelToken(models.Model):
    """A minted model NFT: token id = the task's on-chain id; `owner` from indexed Transfer events and confirmed
    sales (the newest by block wins)."""

    task = models.OneToOneField("tasks.Task", on_delete=models.CASCADE, related_name="model_token")
    chain_id = models.PositiveBigIntegerField()
    token_id = models.PositiveBigIntegerField()
    owner = models.CharField(max_length=42, db_index=True)
    owner_block = models.PositiveBigIntegerField(
        default=0, help_text="Block of the transfer that set `owner`."
    )
    minted_at = models.DateTimeField(default=timezone.now)
    # The list's facts, kept by `marketplace.token_columns.refresh` in the transaction of every record function
    # (never written elsewhere): the browse page and the API filter and sort on these indexed columns.
    licence_price_wei = models.DecimalField(
        **WEI, null=True, blank=True, help_text="Price of the licence terms in force (None: none offered)."
    )
    licence_duration_s = models.PositiveBigIntegerField(null=True, blank=True)
    # None, not "": no terms in force, as the API says
    licence_terms_hash = models.CharField(max_length=66, null=True, blank=True)  # noqa: DJ001
    nft_price_wei = models.DecimalField(
        **WEI, null=True, blank=True, help_text="Price of the owner's active listing (None: not for sale)."
    )
    licences_sold = models.PositiveIntegerField(default=0)
    sales_count = models.PositiveIntegerField(default=0, help_text="NFT sales.")
    accuracy = models.FloatField(null=True, blank=True, help_text="The final model's accuracy (0..1).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain_id", "token_id"], name="uniq_model_token")]
        # the list's default sort (newest, also oldest backwards): a page walks the index instead of sorting all;
        # the other sorts (`marketplace.selectors.SORTS`) each have theirs (the descending prices with NULLs
        # last, the accuracy's too: PostgreSQL only, migration 0004)
        indexes = [
            models.Index(fields=["minted_at", "id"], name="modeltoken_minted"),
            models.Index(fields=["licence_price_wei", "id"], name="modeltoken_licence_price"),
            models.Index(fields=["nft_price_wei", "id"], name="modeltoken_nft_price"),
            models.Index(fields=["-licences_sold", "id"], name="modeltoken_licences_sold"),
            models.Index(fields=["-sales_count", "-licences_sold", "id"], name="modeltoken_sales"),
        ]

    def __str__(self) -> str:
        return f"model NFT #{self.token_id} (owner {self.owner})"


class Listing(models.Model):
    """The NFT listed for sale at `price_wei`. Created inactive when the owner asks for the transaction, active
    once its NFTListed event is verified; inactive again when cancelled, sold or replaced."""

    token = models.ForeignKey(ModelToken, on_delete=models.CASCADE, related_name="listings")
    seller = models.CharField(max_length=42)
    price_wei = models.DecimalField(**WEI)
    active = models.BooleanField(default=False, db_index=True)
    tx_hash = models.CharField(max_length=66, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"listing of #{self.token.token_id} at {self.price_wei} wei"


class LicenceTerms(models.Model):
    """Licence terms of a token: price (wei), duration (seconds, 0 = perpetual), the terms text and its keccak256
    (the hash committed on chain). Active once its LicenceTermsSet event is verified."""

    token = models.ForeignKey(ModelToken, on_delete=models.CASCADE, related_name="licence_terms")
    set_by = models.CharField(max_length=42)
    price_wei = models.DecimalField(**WEI)
    duration_s = models.PositiveBigIntegerField(default=0)
    terms = models.TextField()
    terms_hash = models.CharField(max_length=66, db_index=True)
    active = models.BooleanField(default=False, db_index=True)
    tx_hash = models.CharField(max_length=66, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"licence terms of #{self.token.token_id}: {self.price_wei} wei, {self.duration_s} s"


class Licence(models.Model):
    """A licence bought on chain (LicencePurchased). `expires_at` None = perpetual."""

    token = models.ForeignKey(ModelToken, on_delete=models.CASCADE, related_name="licences")
    buyer = models.CharField(max_length=42, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="licences"
    )
    price_wei = models.DecimalField(**WEI)
    licence_id = models.PositiveBigIntegerField(help_text="Marketplace licence id (on chain).")
    terms_hash = models.CharField(max_length=66)
    expires_at = models.DateTimeField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, unique=True)
    block_number = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"licence {self.licence_id} of #{self.token.token_id} to {self.buyer}"

    def is_valid(self, now=None) -> bool:
        return self.expires_at is None or self.expires_at > (now or timezone.now())


class NFTSale(models.Model):
    """An NFT sold on chain (NFTSold): price and the royalty paid into the stake pool, in wei."""

    token = models.ForeignKey(ModelToken, on_delete=models.CASCADE, related_name="sales")
    seller = models.CharField(max_length=42)
    buyer = models.CharField(max_length=42)
    price_wei = models.DecimalField(**WEI)
    royalty_wei = models.DecimalField(**WEI)
    tx_hash = models.CharField(max_length=66, unique=True)
    block_number = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"sale of #{self.token.token_id} to {self.buyer}"


class Purchase(models.Model):
    """One confirmed purchase transaction (licence or NFT), keyed by its mined tx hash: confirming it again, from
    the page or from the indexer, finds this row and creates nothing."""

    class Kind(models.TextChoices):
        LICENCE = "licence", "Licence"
        NFT = "nft", "NFT"

    tx_hash = models.CharField(max_length=66, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    token = models.ForeignKey(ModelToken, on_delete=models.CASCADE, related_name="purchases")
    buyer = models.CharField(max_length=42)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="purchases"
    )
    price_wei = models.DecimalField(**WEI)
    source = models.CharField(max_length=8, help_text="`page` (posted hash) or `index` (indexed event).")
    fee_wei = models.DecimalField(**WEI, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} purchase {self.tx_hash[:12]}"


class SyncCursor(models.Model):
    """The last `ChainEvent` id `marketplace.services.sync` has applied (events are applied in id order)."""

    name = models.CharField(max_length=32, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at event {self.last_event_id}"
