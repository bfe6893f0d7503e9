"""Creating a task: the domain rules a task must meet, its validation set, its committed spec hash.

Every caller (the create form, `manage.py create_task`, tests) goes through `task_create`, which checks the
rules in `task_create_validate`; the form calls the same check to show the errors next to its fields.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import transaction

from bcfl_core import eip712
from tasks import catalog
from tasks.models import Task
from tasks.services.lifecycle import task_transition

MAX_UINT96 = 2**96 - 1  # TaskRegistry keeps the escrowed reward in a uint96
MAX_SHARE_BPS = 10_000


def file_sha256(*, fileobj) -> str:
    """Hex SHA-256 of a Django file or binary file object; rewinds it before and after."""
    digest = hashlib.sha256()
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    for chunk in fileobj.chunks() if hasattr(fileobj, "chunks") else iter(lambda: fileobj.read(1 << 20), b""):
        digest.update(chunk)
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    return digest.hexdigest()


def task_spec_hash(*, task: Task) -> str:
    """keccak256 (0x hex) of the canonical JSON of `task.spec()`: what `createTask` commits on chain."""
    return eip712.keccak_hex(eip712.canonical_json(task.spec()))


def validation_set_summary(*, upload) -> dict:
    """Read an uploaded .npz (never unpickled) or CSV validation set and return its `data_summary`.

    The loaders take a path, so the upload is copied to a private temporary file first. Raises ValueError
    with a message that names the upload (not the temporary file).
    """
    from bcfl_core.dataspec import DataFileError, data_summary, load_data_file

    suffix = Path(upload.name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="bcfl-upload-") as tmp:
        path = Path(tmp) / f"validation{suffix}"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        upload.seek(0)
        try:
            x, y = load_data_file(path)
        except DataFileError as exc:
            raise ValueError(
                str(exc).replace(str(path), upload.name).replace(path.name, upload.name)
            ) from None
    if len(y) == 0:
        raise ValueError("it contains no examples")
    return data_summary(x, y)


def _participant_errors(rule: str | None, low: int | None, high: int | None) -> dict[str, str]:
    errors = {}
    if low is not None and high is not None and low > high:
        errors["max_participants"] = "The maximum must be at least the minimum number of participants."
    if rule is None:
        return errors
    try:
        entry = catalog.aggregation_rules.get(rule)
    except catalog.UnknownChoice as exc:
        return {**errors, "aggregation_rule": str(exc)}
    if low is not None and low < entry.min_participants:
        fallback = next(
            e.label for e in catalog.aggregation_rules.entries() if e.min_participants <= max(low, 1)
        )
        errors["min_participants"] = (
            f"{entry.label} needs at least {entry.min_participants} participants per round; "
            f"raise the minimum or use {fallback}."
        )
    return errors


def _money_errors(reward_wei: int | None, creator_share_bps: int | None) -> dict[str, str]:
    errors = {}
    if reward_wei is not None and reward_wei <= 0:
        errors["reward_wei"] = "The reward must be more than 0 ETH."
    elif reward_wei is not None and reward_wei > MAX_UINT96:
        errors["reward_wei"] = "The reward is too large for the escrow (at most about 79 billion ETH)."
    if creator_share_bps is not None and not 0 <= creator_share_bps <= MAX_SHARE_BPS:
        errors["creator_share_bps"] = "Your share must be between 0% and 100%."
    return errors


def _validation_set_errors(summary: dict | None, feature_shape: list | None, label_set: list | None) -> dict:
    if summary is None or not feature_shape or not label_set:
        return {}
    from bcfl_core.dataspec import check_against_spec

    problems = check_against_spec(summary, {"feature_shape": feature_shape, "labels": label_set})
    if problems:
        return {"validation_file": "The validation set does not match the data spec: " + " ".join(problems)}
    if len(summary["examples_per_label"]) < 2:
        return {"validation_file": "The validation set must contain at least two different labels."}
    return {}


def task_create_validate(
    *,
    aggregation_rule: str | None = None,
    min_participants: int | None = None,
    max_participants: int | None = None,
    reward_wei: int | None = None,
    creator_share_bps: int | None = None,
    feature_shape: list[int] | None = None,
    label_set: list[int] | None = None,
    validation_summary: dict | None = None,
) -> None:
    """The task's domain rules; raises `ValidationError({task field: message})` naming every broken one.

    min <= max participants; at least the aggregation rule's `min_participants` (from `tasks.catalog`);
    0 < reward <= 2**96 - 1 wei (the escrow's uint96); creator share 0..10,000 bps; the validation set's
    summary fits the feature shape and label set and has two or more labels. A rule whose input is None is
    skipped (the form passes what its fields could parse); `task_create` always passes everything.
    """
    errors = {
        **_participant_errors(aggregation_rule, min_participants, max_participants),
        **_money_errors(reward_wei, creator_share_bps),
        **_validation_set_errors(validation_summary, feature_shape, label_set),
    }
    if errors:
        raise ValidationError(errors)


def task_create(
    *,
    creator,
    title: str,
    model_kind: str,
    learning_rate: float,
    local_epochs: int,
    batch_size: int,
    feature_shape: list[int],
    label_set: list[int],
    min_samples_per_participant: int,
    rounds: int,
    min_participants: int,
    max_participants: int,
    aggregation_rule: str,
    reward_wei: int,
    creator_share_bps: int,
    validation_file: File,
    description: str = "",
    licence_terms: str = "",
    requires_credential: bool = False,
    validation_summary: dict | None = None,
    contribution_scorer: str = "",
) -> Task:
    """Save a draft (validation set in private storage, spec hash committed), then move it to `registering`.

    `contribution_scorer` is a `tasks.catalog.scorers` name ("" = the default).
    `validation_summary` is `bcfl_core.dataspec.data_summary` of the file (read from the file when not given).
    Raises ValidationError ({field: messages}) when a rule of `task_create_validate` or a model field's
    validation fails, or the validation set cannot be read.
    """
    validation_summary = validation_summary or _read_validation_summary(validation_file)
    task_create_validate(
        aggregation_rule=aggregation_rule,
        min_participants=min_participants,
        max_participants=max_participants,
        reward_wei=int(reward_wei),
        creator_share_bps=creator_share_bps,
        feature_shape=list(feature_shape),
        label_set=list(label_set),
        validation_summary=validation_summary,
    )
    # The keyword arguments above that are stored on the task as given.
    spec = {name: value for name, value in locals().items() if name in _STORED_AS_GIVEN}
    task = Task(
        **spec,
        feature_shape=list(feature_shape),
        label_set=list(label_set),
        reward_wei=Decimal(int(reward_wei)),
        validation_summary=validation_summary,
        contribution_scorer=contribution_scorer or catalog.scorer_default(),
        spec_salt=uuid.uuid4().hex,
        chain_id=settings.CHAIN_ID,
    )
    _save_draft(task=task, validation_file=validation_file)
    return task


_STORED_AS_GIVEN = frozenset(
    (
        "creator",
        "title",
        "description",
        "model_kind",
        "learning_rate",
        "local_epochs",
        "batch_size",
        "min_samples_per_participant",
        "rounds",
        "min_participants",
        "max_participants",
        "aggregation_rule",
        "creator_share_bps",
        "licence_terms",
        "requires_credential",
    )
)


def _read_validation_summary(validation_file: File) -> dict:
    try:
        return validation_set_summary(upload=validation_file)
    except ValueError as exc:
        raise ValidationError({"validation_file": f"The validation set could not be read: {exc}"}) from None


def _save_draft(*, task: Task, validation_file: File) -> None:
    """Validate the model fields, store the validation file privately, commit the spec hash, → registering."""
    task.validation_sha256 = file_sha256(fileobj=validation_file)
    task.validation_file = validation_file
    task.full_clean(exclude=["validation_file", "spec_hash"])
    with transaction.atomic():
        task.save()  # stores the file under PRIVATE_MEDIA_ROOT
        task.spec_hash = task_spec_hash(task=task)
        task.save(update_fields=["spec_hash"])
        task_transition(task=task, to=Task.Status.REGISTERING)
