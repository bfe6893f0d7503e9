"""Training records: SuperNode registrations, Flower runs, committed rounds and their update leaves.

Rows that record outside effects have natural unique keys, so every job that writes them is idempotent:
one registration per node public key, one run per (task, attempt), one round per (task, number), one
update per (round, node). Rounds are written only by `training.services.round_ingest`, together with the
ledger row of their `commitRound` (key `commit-round:<task>:<round>`).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class NodeRegistration(models.Model):
    """A participant's SuperNode public key, registered with the platform SuperLink (name = wallet).

    One row per key: a participant reusing its node for several tasks has one registration. A key is
    bound to the wallet that first joined with it; the same key for another wallet is refused.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Registering"
        REGISTERED = "registered", "Registered"
        UNREGISTERED = "unregistered", "Unregistered"
        FAILED = "failed", "Failed"

    public_key_hash = models.CharField(
        max_length=66, unique=True, help_text="keccak256 of the key (as in Join)."
    )
    public_key = models.TextField(help_text="As the participant sent it (OpenSSH or PEM).")
    wallet = models.CharField(max_length=42, db_index=True)
    identity = models.ForeignKey(
        "tasks.Identity", on_delete=models.PROTECT, related_name="node_registrations"
    )
    # Flower node and run ids are unsigned 64-bit: beyond a signed BIGINT, and SQLite turns larger numbers
    # (even in a decimal column) into lossy REALs; so they are stored as decimal text.
    node_id = models.CharField(max_length=20, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    registered_at = models.DateTimeField(null=True, blank=True)
    unregistered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"node {self.node_id or '?'} of {self.wallet} [{self.status}]"


class Run(models.Model):
    """One Flower run of a task. A crashed run is followed by a new attempt resuming after its last round."""

    class Status(models.TextChoices):
        LAUNCHING = "launching", "Launching"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        LOST = "lost", "Lost (launch interrupted)"

    FINAL = (Status.COMPLETED, Status.FAILED, Status.LOST)

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="training_runs")
    attempt = models.PositiveIntegerField(default=1)
    flower_run_id = models.CharField(max_length=20, null=True, blank=True, help_text="u64 as text")  # noqa: DJ001 - NULL until launched
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LAUNCHING, db_index=True)
    flower_status = models.CharField(max_length=32, blank=True)
    resume_from_round = models.PositiveIntegerField(default=0)
    run_dir = models.CharField(max_length=500, blank=True)
    run_config = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Lease of the job chain launching/following this run (see training.services.follower_claim).
    follower = models.CharField(max_length=32, blank=True)
    follower_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["task", "attempt"], name="uniq_run_task_attempt"),
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} run {self.attempt} (flower {self.flower_run_id or '-'}) [{self.status}]"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class Round(models.Model):
    """A finished round: global model, evaluation, Merkle root of its update leaves, and its commitRound."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="training_rounds")
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="rounds")
    number = models.PositiveIntegerField()
    global_sha256 = models.CharField(max_length=64, help_text="weights_hash of the global model (on chain).")
    checkpoint_path = models.CharField(max_length=500, blank=True)
    checkpoint_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the safetensors file."
    )
    accuracy = models.FloatField(null=True, blank=True)
    loss = models.FloatField(null=True, blank=True)
    accepted_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    aggregation_rule = models.CharField(max_length=32, blank=True)
    updates_root = models.CharField(max_length=66)
    commit_tx = models.ForeignKey(
        "contracts.ChainTx", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    record = models.JSONField(default=dict, blank=True, help_text="The ServerApp's JSON line, as written.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="uniq_round_task_number"),
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} round {self.number}"


class Update(models.Model):
    """One node's reply in one round, as judged by the ServerApp; a leaf of the round's Merkle tree."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="updates")
    node_id = models.CharField(max_length=20, help_text="u64 as text")
    participation = models.ForeignKey(
        "tasks.Participation", null=True, blank=True, on_delete=models.SET_NULL, related_name="updates"
    )
    wallet = models.CharField(max_length=42, blank=True, help_text="Empty for an unknown node (not a leaf).")
    update_sha256 = models.CharField(max_length=64, blank=True)
    signature = models.CharField(max_length=132, blank=True)
    num_examples = models.PositiveIntegerField(default=0)
    norm = models.FloatField(null=True, blank=True)
    accepted = models.BooleanField()
    reason = models.TextField(blank=True)
    score = models.FloatField(default=0.0)
    score_uint = models.DecimalField(max_digits=78, decimal_places=0, default=0, help_text="Leaf score.")
    leaf_index = models.IntegerField(
        null=True, blank=True, help_text="Position in the tree; None if no leaf."
    )
    leaf = models.CharField(max_length=66, blank=True)

    class Meta:
        ordering = ["round", "leaf_index", "node_id"]
        constraints = [
            models.UniqueConstraint(fields=["round", "node_id"], name="uniq_update_round_node"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.wallet or self.node_id} in {self.round} ({'accepted' if self.accepted else 'rejected'})"
        )
