"""Task creation form: every field says what to fix. The form parses text into values; the domain rules (rule
needs enough participants, min <= max, reward and share ranges, validation set fits the spec) are the
service's (`tasks.services.task_create_validate`), whose errors the form shows next to its fields."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.text import get_valid_filename

from tasks import catalog
from tasks.models import Task
from tasks.services import task_create_validate, validation_set_summary

WEI_PER_ETH = Decimal(10) ** 18
DEFAULT_VALIDATION_MAX_BYTES = 20 * 1024 * 1024
# the service's field names -> this form's (the rest are the same)
FORM_FIELD = {"reward_wei": "reward_eth", "creator_share_bps": "creator_share_percent"}


def validation_max_bytes() -> int:
    return int(getattr(settings, "TASK_VALIDATION_MAX_BYTES", DEFAULT_VALIDATION_MAX_BYTES))


def parse_feature_shape(text: str) -> list[int]:
    """ "64" -> [64]; "1,8,8" or "1x8x8" -> [1, 8, 8]."""
    parts = [p.strip() for p in re.split(r"[,x×]", (text or "").strip().strip("[]()")) if p.strip()]
    if not parts:
        raise forms.ValidationError('Give the shape of one example, e.g. "64" or "1,8,8".')
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise forms.ValidationError(
            'Feature shape must be whole numbers separated by commas, e.g. "64" or "1,8,8".'
        ) from None
    if any(d <= 0 for d in dims):
        raise forms.ValidationError("Every dimension of the feature shape must be at least 1.")
    if len(dims) > 4:
        raise forms.ValidationError("Feature shape can have at most 4 dimensions.")
    size = 1
    for d in dims:
        size *= d
    if size > 10_000_000:
        raise forms.ValidationError(
            "One example would have more than 10 million features; that is too large."
        )
    return dims


def parse_label_set(text: str) -> list[int]:
    """ "0-9" -> [0..9]; "0,1,2" -> [0, 1, 2]; mixed "0-3,7" is fine."""
    labels: set[int] = set()
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise forms.ValidationError('List the labels, e.g. "0-9" or "0,1,2".')
    for part in parts:
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        try:
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if lo > hi:
                    raise forms.ValidationError(
                        f'The range "{part}" goes backwards; write it low-high, e.g. "0-9".'
                    )
                if hi - lo > 100_000:
                    raise forms.ValidationError(f'The range "{part}" is too large (at most 100,000 labels).')
                labels.update(range(lo, hi + 1))
            else:
                value = int(part)
                if value < 0:
                    raise ValueError
                labels.add(value)
        except ValueError:
            raise forms.ValidationError(
                f'"{part}" is not a label: use non-negative whole numbers or ranges, e.g. "0-9" or "0,1,2".'
            ) from None
    if len(labels) < 2:
        raise forms.ValidationError("A classification task needs at least two labels.")
    return sorted(labels)


def parse_eth(text: str) -> int:
    """ETH amount text -> wei (at most 18 decimals); the service checks the range (> 0, fits the escrow)."""
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        raise forms.ValidationError('Give the reward in ETH as a number, e.g. "1" or "0.25".') from None
    if not value.is_finite():
        raise forms.ValidationError("The reward must be more than 0 ETH.")
    with localcontext() as ctx:
        ctx.prec = 120
        wei_exact = value * WEI_PER_ETH
        if wei_exact != wei_exact.to_integral_value():
            raise forms.ValidationError("ETH has at most 18 decimal places; round the reward.")
        return int(wei_exact)


class TaskCreateForm(forms.Form):
    title = forms.CharField(max_length=200, error_messages={"required": "Give the task a title."})
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    model_kind = forms.ChoiceField(
        choices=catalog.model_kind_choices, error_messages={"required": "Choose a model kind."}
    )
    learning_rate = forms.CharField(initial="0.01", help_text="Greater than 0 and at most 1.")
    local_epochs = forms.IntegerField(initial=1, help_text="1 to 100 epochs per round on each participant.")
    batch_size = forms.IntegerField(initial=32, help_text="1 to 100,000.")
    feature_shape = forms.CharField(help_text='Shape of one example: "64" or "1,8,8".')
    label_set = forms.CharField(help_text='Allowed labels: "0-9" or "0,1,2".')
    min_samples_per_participant = forms.IntegerField(
        initial=50, help_text="Each participant needs at least this many examples."
    )
    rounds = forms.IntegerField(initial=5, help_text="1 to 1000.")
    min_participants = forms.IntegerField(initial=2)
    max_participants = forms.IntegerField(initial=10)
    aggregation_rule = forms.ChoiceField(
        choices=catalog.aggregation_rule_choices, initial=catalog.aggregation_rule_default
    )
    contribution_scorer = forms.ChoiceField(
        label="Contribution measure",
        choices=catalog.scorer_choices,
        initial=catalog.scorer_default,
        required=False,
        help_text="How participants' rewards are measured; committed with the task and shown before joining.",
    )
    reward_eth = forms.CharField(label="Reward pool (ETH)", help_text="Escrowed on chain by your wallet.")
    creator_share_percent = forms.DecimalField(
        label="Your share of the model stake (%)",
        initial=Decimal("10"),
        help_text="0 to 100, up to 2 decimals.",
    )
    licence_terms = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "State the licence terms for the trained model."},
    )
    requires_credential = forms.BooleanField(
        required=False, label="Only participants with a uniqueness credential (one person, one identity)"
    )
    validation_file = forms.FileField(
        label="Validation set (.npz with arrays x and y, or CSV with the label in the last column)",
        error_messages={"required": "Upload the validation set (.npz or .csv)."},
    )

    def clean_title(self):
        title = self.cleaned_data["title"].strip()
        if len(title) < 3:
            raise forms.ValidationError("The title must be at least 3 characters.")
        return title

    def clean_learning_rate(self):
        text = self.cleaned_data["learning_rate"].strip()
        try:
            lr = float(text)
        except ValueError:
            raise forms.ValidationError('The learning rate must be a number, e.g. "0.01".') from None
        if not (0 < lr <= 1):
            raise forms.ValidationError("The learning rate must be greater than 0 and at most 1 (e.g. 0.01).")
        return lr

    def clean_local_epochs(self):
        return self._in_range("local_epochs", 1, 100, "Local epochs must be between 1 and 100.")

    def clean_batch_size(self):
        return self._in_range("batch_size", 1, 100_000, "The batch size must be between 1 and 100,000.")

    def clean_min_samples_per_participant(self):
        return self._in_range(
            "min_samples_per_participant", 1, 10**9, "The minimum number of examples must be at least 1."
        )

    def clean_rounds(self):
        return self._in_range("rounds", 1, 1000, "Rounds must be between 1 and 1000.")

    def clean_min_participants(self):
        return self._in_range(
            "min_participants", 1, 10_000, "The minimum number of participants must be 1 to 10,000."
        )

    def clean_max_participants(self):
        return self._in_range(
            "max_participants", 1, 10_000, "The maximum number of participants must be 1 to 10,000."
        )

    def clean_feature_shape(self):
        return parse_feature_shape(self.cleaned_data["feature_shape"])

    def clean_label_set(self):
        return parse_label_set(self.cleaned_data["label_set"])

    def clean_reward_eth(self):
        return parse_eth(self.cleaned_data["reward_eth"])

    def clean_creator_share_percent(self):
        bps = self.cleaned_data["creator_share_percent"] * 100
        if bps != bps.to_integral_value():
            raise forms.ValidationError("Give your share with at most 2 decimals (e.g. 12.5).")
        return int(bps)

    def clean_validation_file(self):
        upload = self.cleaned_data["validation_file"]
        suffix = Path(upload.name).suffix.lower()
        if suffix not in (".npz", ".csv"):
            raise forms.ValidationError("The validation set must be a .npz or .csv file.")
        limit = validation_max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                f"The validation set is {upload.size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB."
            )
        try:
            self._validation_summary = validation_set_summary(upload=upload)
        except ValueError as exc:
            raise forms.ValidationError(f"The validation set could not be read: {exc}") from None
        upload.name = get_valid_filename(Path(upload.name).name)
        return upload

    def clean(self):
        data = super().clean()
        summary = getattr(self, "_validation_summary", None)
        try:
            task_create_validate(
                aggregation_rule=data.get("aggregation_rule"),
                min_participants=data.get("min_participants"),
                max_participants=data.get("max_participants"),
                reward_wei=data.get("reward_eth"),
                creator_share_bps=data.get("creator_share_percent"),
                feature_shape=data.get("feature_shape"),
                label_set=data.get("label_set"),
                validation_summary=summary,
            )
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                field = FORM_FIELD.get(name, name)
                self.add_error(field if field in self.fields else None, messages)
        data["validation_summary"] = summary
        return data

    def _in_range(self, name: str, lo: int, hi: int, message: str) -> int:
        value = self.cleaned_data[name]
        if value is None or not lo <= value <= hi:
            raise forms.ValidationError(message)
        return value

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "title": d["title"],
            "description": d.get("description", ""),
            "model_kind": d["model_kind"],
            "learning_rate": d["learning_rate"],
            "local_epochs": d["local_epochs"],
            "batch_size": d["batch_size"],
            "feature_shape": d["feature_shape"],
            "label_set": d["label_set"],
            "min_samples_per_participant": d["min_samples_per_participant"],
            "rounds": d["rounds"],
            "min_participants": d["min_participants"],
            "max_participants": d["max_participants"],
            "aggregation_rule": d["aggregation_rule"],
            "contribution_scorer": d.get("contribution_scorer") or "",
            "reward_wei": d["reward_eth"],
            "creator_share_bps": d["creator_share_percent"],
            "licence_terms": d["licence_terms"],
            "requires_credential": d.get("requires_credential", False),
            "validation_file": d["validation_file"],
            "validation_summary": d.get("validation_summary"),
        }


class TxHashForm(forms.Form):
    tx_hash = forms.RegexField(
        regex=r"^0x[0-9a-fA-F]{64}$",
        error_messages={"invalid": "Expected a transaction hash: 0x and 64 hex digits."},
    )


class TaskFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Task.Status.choices])
    model_kind = forms.ChoiceField(
        required=False, choices=lambda: [("", "Any model"), *catalog.model_kind_choices()]
    )


class CredentialForm(forms.Form):
    credential = forms.JSONField(help_text='{"subject": "0x…", "nullifier": "0x…", "expiresAt": 1767225600}')
    signature = forms.RegexField(
        regex=r"^0x[0-9a-fA-F]{130}$", error_messages={"invalid": "Expected a 65-byte 0x signature."}
    )
