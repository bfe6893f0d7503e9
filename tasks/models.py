"""The federated-learning task domain: tasks, participations, identities, trusted issuers and bans.

Status and ban changes go through `tasks.services`; nothing else writes `Task.status`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from tasks import catalog
from tasks.storage import private_storage  # noqa: F401 - also the name migration 0001 refers to

WEI_PER_ETH = Decimal(10) ** 18


def validation_upload_to(instance: Task, filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"validation/{uuid.uuid4().hex}.{suffix}"


class Task(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        REGISTERING = "registering", "Registering on chain"
        RECRUITING = "recruiting", "Recruiting"
        TRAINING = "training", "Training"
        FINALIZING = "finalizing", "Finalizing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_tasks"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    model_kind = models.CharField(max_length=32, choices=catalog.model_kind_choices)
    # hyper-parameters
    learning_rate = models.FloatField(validators=[MinValueValidator(1e-12), MaxValueValidator(1.0)])
    local_epochs = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)])
    batch_size = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100_000)])
    # data spec
    feature_shape = models.JSONField(help_text="Shape of one example, e.g. [64] or [1, 8, 8].")
    label_set = models.JSONField(help_text="Allowed integer labels, e.g. [0, 1, ..., 9].")
    min_samples_per_participant = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    # federation
    rounds = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1000)])
    min_participants = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    max_participants = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    aggregation_rule = models.CharField(
        max_length=32, choices=catalog.aggregation_rule_choices, default=catalog.aggregation_rule_default
    )
    contribution_scorer = models.CharField(
        max_length=32,
        choices=catalog.scorer_choices,
        default=catalog.scorer_default,
        help_text="How each accepted update's contribution is measured (part of the committed spec).",
    )
    # money and terms
    reward_wei = models.DecimalField(max_digits=78, decimal_places=0, validators=[MinValueValidator(1)])
    creator_share_bps = models.PositiveIntegerField(validators=[MaxValueValidator(10_000)])
    licence_terms = models.TextField(blank=True)
    requires_credential = models.BooleanField(
        default=False, help_text="Only wallets with a trusted uniqueness credential may join."
    )
    # validation set (private) and the committed spec
    validation_file = models.FileField(
        storage=private_storage, upload_to=validation_upload_to, max_length=255
    )
    validation_sha256 = models.CharField(max_length=64)
    validation_summary = models.JSONField(default=dict, blank=True)
    spec_salt = models.CharField(max_length=32, default="", blank=True, editable=False)
    spec_hash = models.CharField(max_length=66, blank=True, db_index=True)
    # lifecycle and chain records
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_note = models.TextField(
        blank=True, help_text="Why the task is in its status (e.g. why it failed)."
    )
    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    chain_task_id = models.PositiveBigIntegerField(null=True, blank=True)
    create_tx_hash = models.CharField(max_length=66, blank=True)
    create_fee_wei = models.DecimalField(max_digits=78, decimal_places=0, null=True, blank=True)
    cancel_tx_hash = models.CharField(max_length=66, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    registered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_participants__lte=models.F("max_participants")),
                name="task_min_le_max_participants",
                violation_error_message="The minimum number of participants cannot exceed the maximum.",
            ),
            models.CheckConstraint(
                condition=models.Q(creator_share_bps__lte=10_000),
                name="task_creator_share_le_100pct",
            ),
            models.UniqueConstraint(
                fields=["chain_id", "chain_task_id"],
                condition=models.Q(chain_task_id__isnull=False),
                name="uniq_task_chain_task_id",
            ),
            models.UniqueConstraint(
                fields=["spec_hash"], condition=~models.Q(spec_hash=""), name="uniq_task_spec_hash"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def clean(self):
        errors = {}
        if self.min_participants and self.max_participants and self.min_participants > self.max_participants:
            errors["max_participants"] = "The maximum must be at least the minimum number of participants."
        if (
            not isinstance(self.feature_shape, list)
            or not self.feature_shape
            or not all(isinstance(d, int) and d > 0 for d in self.feature_shape)
        ):
            errors["feature_shape"] = "Feature shape must be a non-empty list of positive integers."
        if (
            not isinstance(self.label_set, list)
            or len(self.label_set) < 2
            or not all(isinstance(v, int) and v >= 0 for v in self.label_set)
        ):
            errors["label_set"] = "The label set must list at least two non-negative integer labels."
        if errors:
            raise ValidationError(errors)

    @property
    def reward_eth(self) -> Decimal:
        return (Decimal(self.reward_wei) / WEI_PER_ETH).normalize()

    @property
    def creator_share_percent(self) -> Decimal:
        return (Decimal(self.creator_share_bps) / 100).normalize()

    @property
    def is_on_chain(self) -> bool:
        return self.chain_task_id is not None

    def data_spec(self) -> dict:
        """The spec in `bcfl_core.dataspec.check_against_spec` terms."""
        return {
            "feature_shape": list(self.feature_shape),
            "labels": list(self.label_set),
            "min_samples": int(self.min_samples_per_participant),
        }

    def contribution_spec(self) -> dict:
        """The committed valuation: the scorer's name and, in words, what it measures (shown before joining)."""
        entry = (
            catalog.scorers.get(self.contribution_scorer)
            if self.contribution_scorer in catalog.scorers
            else None
        )
        return {
            "scorer": self.contribution_scorer,
            "utility": entry.description if entry else "",
        }

    def spec(self) -> dict:
        """Everything the creator commits to; `spec_hash` is keccak256 of its canonical JSON."""
        return {
            "version": 2,
            "salt": self.spec_salt,
            "creator": self.creator.username,
            "title": self.title,
            "description": self.description,
            "model_kind": self.model_kind,
            "hyperparameters": {
                "learning_rate": repr(float(self.learning_rate)),
                "local_epochs": int(self.local_epochs),
                "batch_size": int(self.batch_size),
            },
            "data": self.data_spec(),
            "rounds": int(self.rounds),
            "min_participants": int(self.min_participants),
            "max_participants": int(self.max_participants),
            "aggregation_rule": self.aggregation_rule,
            "contribution": self.contribution_spec(),
            "reward_wei": str(int(self.reward_wei)),
            "creator_share_bps": int(self.creator_share_bps),
            "licence_terms": self.licence_terms,
            "requires_credential": bool(self.requires_credential),
            "validation_sha256": self.validation_sha256,
        }


class TrustedIssuer(models.Model):
    """An issuer of uniqueness credentials (one person, one identity); admins manage the list."""

    address = models.CharField(max_length=42, unique=True, help_text="Checksummed signer address.")
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


class Identity(models.Model):
    """A person as far as the platform can tell: `did:pkh` of one wallet, or a credential's nullifier.

    When a wallet presents a credential, its pkh identity is merged into the nullifier identity
    (`merged_into`); bans of either apply to every wallet of the person.
    """

    class Kind(models.TextChoices):
        PKH = "pkh", "Wallet (did:pkh)"
        NULLIFIER = "nullifier", "Uniqueness credential"

    did = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PKH)
    nullifier = models.CharField(max_length=66, unique=True, null=True, blank=True)
    issuer = models.ForeignKey(
        TrustedIssuer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    credential = models.JSONField(default=dict, blank=True)
    credential_expires_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_identities"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "identities"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.did

    @cached_property
    def chain_hash(self) -> str:
        """bytes32 identity on chain: keccak256(did) as 0x hex."""
        from bcfl_core.eip712 import keccak_hex

        return keccak_hex(self.did)


class IdentityWallet(models.Model):
    address = models.CharField(max_length=42, unique=True)
    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="wallets")
    linked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address


class Participation(models.Model):
    class Status(models.TextChoices):
        JOINED = "joined", "Joined"
        ACTIVE = "active", "Training"
        EXCLUDED = "excluded", "Excluded"
        WITHDRAWN = "withdrawn", "Withdrawn"
        COMPLETED = "completed", "Completed"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="participations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="participations"
    )
    wallet = models.CharField(max_length=42)
    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="participations")
    node_public_key = models.TextField()
    node_public_key_hash = models.CharField(max_length=66)
    data_summary = models.JSONField()
    data_summary_hash = models.CharField(max_length=66)
    join_signature = models.CharField(max_length=132)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.JOINED, db_index=True)
    status_note = models.TextField(blank=True)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["task", "identity"], name="uniq_participation_task_identity"),
            models.UniqueConstraint(fields=["task", "wallet"], name="uniq_participation_task_wallet"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} in task {self.task_id}"


# Participations that hold a place in the task (count towards max_participants and the participant count).
COUNTED_PARTICIPATIONS = (
    Participation.Status.JOINED,
    Participation.Status.ACTIVE,
    Participation.Status.COMPLETED,
)


class BanQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(lifted_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class Ban(models.Model):
    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="bans")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="bans")
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    evidence_hash = models.CharField(max_length=66)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty = permanent.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ban_tx = models.ForeignKey(
        "contracts.ChainTx", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lift_tx = models.ForeignKey(
        "contracts.ChainTx", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = BanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"ban of {self.identity} ({'lifted' if self.lifted_at else 'active'})"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.lifted_at is None and (self.expires_at is None or self.expires_at > now)
