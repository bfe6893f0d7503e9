"""Training records: SuperNode registrations, Flower runs, committed rounds and their update leaves.

Rows that record outside effects have natural unique keys, so every job that writes them is idempotent:
one registration per node public key, one run per (task, attempt), one round per (task, number), one
update per (round, node). Rounds are written only by `training.services.round_ingest`, together with the
ledger row of their `commitRound` (key `commit-round:<task>:<round>`). Finalization writes one
`Finalization` (its job chain's progress and lease), one `FinalModel` and one `Contribution` per
participant of a task (`training.services.finalize`); a final model has at most one `OnnxExport`.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tasks.storage import private_storage


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
    excluded = models.TextField(
        blank=True, help_text="Why the aggregation rule left this accepted update out (not evidence)."
    )
    flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Detection signals: [{signal, value, threshold, counts, detail}] (training.defence.detect).",
    )
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


class Finalization(models.Model):
    """Progress of a task's finalization job chain: steps done, its lease, failures so far.

    The chain (`training.jobs.task_finalize`) runs `training.services.finalize.FINALIZE_STEPS` in order; each
    step is idempotent, so a chain that died (its lease ran out) is restarted by the watchdog from the first
    step not in `steps_done`.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    task = models.OneToOneField("tasks.Task", on_delete=models.CASCADE, related_name="finalization")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    steps_done = models.JSONField(default=list, blank=True, help_text="Names of the steps done, in order.")
    attempts = models.PositiveIntegerField(default=0, help_text="Transient failures so far (all chains).")
    error = models.TextField(blank=True)
    # Lease of the job chain running the steps (see training.services.finalize.finalize_claim).
    follower = models.CharField(max_length=32, blank=True)
    follower_until = models.DateTimeField(null=True, blank=True)
    # The escrow's settlement on chain: TaskRegistry.finalize (completed) or TaskRegistry.fail (failed).
    stakes_root = models.CharField(max_length=66, blank=True, help_text="Merkle root of (holder, shares).")
    settlement = models.CharField(
        max_length=16,
        blank=True,
        help_text='"finalize" or "fail": the TaskRegistry call that settles the escrow.',
    )
    rounds_paid = models.PositiveIntegerField(null=True, blank=True, help_text="Committed rounds paid for.")
    paid_to_stakes_wei = models.DecimalField(max_digits=78, decimal_places=0, null=True, blank=True)
    refunded_wei = models.DecimalField(max_digits=78, decimal_places=0, null=True, blank=True)
    settled_tx_hash = models.CharField(max_length=66, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"finalization of task {self.task_id} [{self.status}]"


class StakeAllocation(models.Model):
    """One holder's leaf in a task's stakes tree (`training.stakes`): its shares (of 10,000) and the proof
    `StakeToken.claimShares` needs. `claimed_tx_hash` is set once the shares are the holder's on chain."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="stake_allocations")
    holder = models.CharField(max_length=42, help_text="Checksummed address.")
    shares = models.PositiveIntegerField()
    leaf_index = models.PositiveIntegerField()
    leaf = models.CharField(max_length=66)
    proof = models.JSONField(default=list, blank=True)
    claimed_tx_hash = models.CharField(max_length=66, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "leaf_index"]
        constraints = [
            models.UniqueConstraint(fields=["task", "holder"], name="uniq_stake_task_holder"),
        ]

    def __str__(self) -> str:
        return f"{self.holder}: {self.shares} shares of task {self.task_id}"


def final_model_upload_to(instance: FinalModel, filename: str) -> str:
    return f"final_models/task-{instance.task_id}/model.safetensors"


def model_card_upload_to(instance: FinalModel, filename: str) -> str:
    return f"final_models/task-{instance.task_id}/README.md"


class FinalModel(models.Model):
    """The task's trained model: the last round's checkpoint, copied to private storage."""

    task = models.OneToOneField("tasks.Task", on_delete=models.CASCADE, related_name="final_model")
    source_round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(storage=private_storage, upload_to=final_model_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the safetensors file.")
    weights_sha256 = models.CharField(
        max_length=64, help_text="weights_hash of the arrays (the global model hash committed on chain)."
    )
    metrics = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"rounds": [{"round", "accuracy", "loss", "accepted", "rejected"}]}',
    )
    card = models.FileField(
        storage=private_storage,
        upload_to=model_card_upload_to,
        max_length=255,
        blank=True,
        help_text="Model card (Hugging Face layout: YAML metadata + Markdown).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # the home page's "trained models", newest first (`bcfl_site.selectors.completed_models`)
        indexes = [models.Index(fields=["created_at", "id"], name="finalmodel_created")]

    def __str__(self) -> str:
        return f"final model of task {self.task_id} ({self.sha256[:12]})"


def onnx_upload_to(instance: OnnxExport, filename: str) -> str:
    return f"final_models/task-{instance.final_model.task_id}/model.onnx"


class OnnxExport(models.Model):
    """A final model exported to ONNX (`training.services.exports`), stored next to its safetensors file.

    Checked before it was stored: onnxruntime's output on a batch of the task's validation set equals torch's
    within `max_abs_diff` (at most `training.onnx_export.TOLERANCE`).
    """

    final_model = models.OneToOneField(FinalModel, on_delete=models.CASCADE, related_name="onnx_export")
    file = models.FileField(storage=private_storage, upload_to=onnx_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the .onnx file.")
    source_sha256 = models.CharField(
        max_length=64, help_text="sha256 of the safetensors file it was exported from."
    )
    opset = models.PositiveSmallIntegerField()
    max_abs_diff = models.FloatField(help_text="Largest |onnxruntime - torch| logit on the check batch.")
    check_examples = models.PositiveIntegerField(help_text="Examples in the check batch.")
    export_seconds = models.FloatField(help_text="Wall time of export plus check.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ONNX of task {self.final_model.task_id}'s model ({self.sha256[:12]})"


class Contribution(models.Model):
    """A participant's contribution to a task: its score in every round and their sum.

    Filled at finalization from the round records (the scorer's per-update scores; rejected updates and
    missed rounds score 0). Stakes are derived from `cumulative` by the next finalization steps.
    """

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="contributions")
    participation = models.ForeignKey(
        "tasks.Participation", on_delete=models.PROTECT, related_name="contributions"
    )
    wallet = models.CharField(max_length=42)
    per_round = models.JSONField(default=dict, blank=True, help_text='{"<round>": score}, every round.')
    cumulative = models.FloatField(default=0.0, help_text="Sum of per_round.")
    accepted_rounds = models.PositiveIntegerField(default=0)
    flagged_rounds = models.PositiveIntegerField(
        default=0, help_text="Rounds with a detection signal that counts toward a verdict."
    )
    malicious = models.BooleanField(default=False, help_text="Judged malicious: no stake, banned.")
    evidence = models.JSONField(
        default=dict, blank=True, help_text="Per-round signals, values, thresholds and update hashes."
    )
    share_bps = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Stake in basis points of the model's 10,000 shares (after verdicts).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "-cumulative", "wallet"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "participation"], name="uniq_contribution_task_participation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} in task {self.task_id}: {self.cumulative:.4f}"
