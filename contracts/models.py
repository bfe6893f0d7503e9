"""The chain ledger: deployments, every platform transaction, and indexed contract events."""

from __future__ import annotations

from django.db import models


class Deployment(models.Model):
    """One deployed contract on one chain; `deploy_contracts` is idempotent thanks to the unique key."""

    chain_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    tx_hash = models.CharField(max_length=66, blank=True)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    bytecode_sha256 = models.CharField(max_length=64, blank=True)
    deployed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "name"], name="uniq_deployment_chain_name")
        ]
        ordering = ["chain_id", "name"]

    def __str__(self) -> str:
        return f"{self.name}@{self.address} (chain {self.chain_id})"


class ChainTx(models.Model):
    """A platform transaction. Written before anything is signed; the idempotency key is the natural key.

    Lifecycle: queued -> signed (nonce assigned, raw tx + hash stored) -> sent -> confirmed | failed.
    A retry of a signed/sent row rebroadcasts `raw_tx` or reads its receipt; it never signs again.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SIGNED = "signed", "Signed"
        SENT = "sent", "Sent"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    idempotency_key = models.CharField(max_length=200)
    chain_id = models.PositiveBigIntegerField()
    contract_name = models.CharField(max_length=64)
    function = models.CharField(max_length=64)
    args = models.JSONField(default=list, blank=True)
    value_wei = models.DecimalField(max_digits=78, decimal_places=0, default=0)
    task_ref = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Platform task id, for gas accounting per task."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    sender = models.CharField(max_length=42, blank=True)
    nonce = models.PositiveBigIntegerField(null=True, blank=True)
    raw_tx = models.TextField(blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, db_index=True)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    effective_gas_price = models.DecimalField(max_digits=78, decimal_places=0, null=True, blank=True)
    error = models.TextField(blank=True)
    error_name = models.CharField(max_length=128, blank=True, help_text="Decoded custom error of a revert.")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="uniq_chaintx_idempotency_key"),
            models.UniqueConstraint(
                fields=["chain_id", "sender", "nonce"],
                condition=models.Q(nonce__isnull=False),
                name="uniq_chaintx_sender_nonce",
            ),
        ]
        ordering = ["-created_at"]
        verbose_name = "chain transaction"

    def __str__(self) -> str:
        return f"{self.idempotency_key} [{self.status}]"

    @property
    def fee_wei(self) -> int | None:
        if self.gas_used is None or self.effective_gas_price is None:
            return None
        return int(self.gas_used) * int(self.effective_gas_price)


class EventCursor(models.Model):
    """Last block the indexer has fully processed, per chain."""

    chain_id = models.PositiveBigIntegerField(unique=True)
    last_block = models.BigIntegerField(default=-1)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"chain {self.chain_id} @ {self.last_block}"


class ChainEvent(models.Model):
    """A decoded contract event; replays upsert on (tx_hash, log_index)."""

    chain_id = models.PositiveBigIntegerField()
    contract_name = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    event = models.CharField(max_length=64, db_index=True)
    args = models.JSONField(default=dict)
    block_number = models.PositiveBigIntegerField(db_index=True)
    block_hash = models.CharField(max_length=66)
    tx_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tx_hash", "log_index"], name="uniq_chainevent_tx_log"),
        ]
        ordering = ["block_number", "log_index"]

    def __str__(self) -> str:
        return f"{self.contract_name}.{self.event} @ {self.block_number}"


class SignerLock(models.Model):
    """One row per (chain, sender): `SELECT ... FOR UPDATE` on it serializes nonce assignment + signing.

    On PostgreSQL concurrent workers block on this row; on SQLite (`transaction_mode=IMMEDIATE`) every
    write transaction is already serialized, and the row is harmless.
    """

    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "address"], name="uniq_signerlock_chain_addr")
        ]

    def __str__(self) -> str:
        return f"{self.address} (chain {self.chain_id})"
