"""Forms of the marketplace pages: the browse filters, the owner's licence terms and listing price, predict input.
Prices are typed in ETH and converted to wei (18 decimals, exact); durations in days (0 or "perpetual" = none)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from marketplace import selectors
from tasks import catalog
from training.predict import MAX_INPUT_BYTES

WEI_PER_ETH = Decimal(10) ** 18
SORT_CHOICES = [
    ("newest", "Newest"),
    ("accuracy", "Accuracy (best first)"),
    ("licence_price", "Licence price (low to high)"),
    ("-licence_price", "Licence price (high to low)"),
    ("nft_price", "NFT price (low to high)"),
    ("sales", "Sales (most first)"),
]
PAGE_SIZES = (12, 24, 48)


def eth_to_wei(value: Decimal | None) -> int | None:
    return None if value is None else int(value * WEI_PER_ETH)


class EthField(forms.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        super().__init__(max_digits=40, decimal_places=18, **kwargs)


def _attrs(attrs: dict) -> str:
    """Django's widgets/attrs.html in Python: in order, False left out, True a bare name, values escaped."""
    parts = (
        format_html(" {}", name) if value is True else format_html(' {}="{}"', name, str(value))
        for name, value in attrs.items()
        if value is not False
    )
    return mark_safe("".join(parts))  # noqa: S308 - every part escaped by format_html


class QuickSelect(forms.Select):
    """`forms.Select` rendered in Python, with the same HTML as Django's template (which includes a template per
    option: 1.2 ms for the dataset filter's 9 options, half the browse form). Flat choices; others fall back."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        if any(group for group, _options, _index in widget["optgroups"]) or not widget["optgroups"]:
            return super().render(name, value, attrs, renderer)  # optgroups, no options: Django's template
        options = [
            format_html(
                '<option value="{}"{}>{}</option>',
                str(option["value"]),
                _attrs(option["attrs"]),
                option["label"],
            )
            for _group, group_options, _index in widget["optgroups"]
            for option in group_options
        ]
        html = format_html('<select name="{}"{}>', widget["name"], _attrs(widget["attrs"]))
        return mark_safe(html + "\n  " + "\n\n  ".join(options) + "\n\n</select>")  # noqa: S308 - escaped above


class BrowseForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    model_kind = forms.ChoiceField(required=False, label="Model kind", widget=QuickSelect)
    dataset = forms.ChoiceField(required=False, widget=QuickSelect)
    accuracy_min = forms.DecimalField(required=False, min_value=0, max_value=100, label="Accuracy from (%)")
    accuracy_max = forms.DecimalField(required=False, min_value=0, max_value=100, label="to (%)")
    price_min = EthField(required=False, label="Price from (ETH)")
    price_max = EthField(required=False, label="to (ETH)")
    for_sale = forms.BooleanField(required=False, label="NFT for sale")
    licence = forms.BooleanField(required=False, label="Licence available")
    mine = forms.BooleanField(required=False, label="Owned by me")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, widget=QuickSelect)
    per_page = forms.TypedChoiceField(
        required=False,
        coerce=int,
        choices=[(n, n) for n in PAGE_SIZES],
        empty_value=PAGE_SIZES[0],
        widget=QuickSelect,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model_kind"].choices = [("", "Any"), *catalog.model_kind_choices()]
        self.fields["dataset"].choices = [("", "Any")] + [(d, d) for d in selectors.datasets()]

    def selector_kwargs(self, *, wallet: str) -> dict:
        """`selectors.model_list` keyword arguments from the cleaned filters (accuracy % -> 0..1, ETH -> wei)."""
        d = self.cleaned_data
        pct = lambda v: None if v is None else float(v) / 100  # noqa: E731
        return {
            "q": d.get("q") or "",
            "model_kind": d.get("model_kind") or "",
            "dataset": d.get("dataset") or "",
            "accuracy_min": pct(d.get("accuracy_min")),
            "accuracy_max": pct(d.get("accuracy_max")),
            "price_min_wei": eth_to_wei(d.get("price_min")),
            "price_max_wei": eth_to_wei(d.get("price_max")),
            "nft_for_sale": True if d.get("for_sale") else None,
            "licence_for_sale": True if d.get("licence") else None,
            "owner": wallet if d.get("mine") else "",
            "sort": d.get("sort") or "newest",
        }


class LicenceTermsForm(forms.Form):
    price_eth = EthField(label="Licence price (ETH)", help_text="0 withdraws the licence offer.")
    duration_days = forms.IntegerField(required=False, min_value=1, max_value=36_500, label="Duration (days)")
    perpetual = forms.BooleanField(required=False, label="Perpetual (no expiry)")
    terms = forms.CharField(
        required=False, max_length=20_000, widget=forms.Textarea(attrs={"rows": 4}), label="Terms"
    )

    def clean(self):
        data = super().clean()
        if not data.get("perpetual") and not data.get("duration_days") and data.get("price_eth"):
            raise forms.ValidationError("Give a duration in days, or tick perpetual.")
        return data

    def service_kwargs(self) -> dict:
        """`licence_terms_call` keyword arguments: price in wei, duration in seconds (0 = perpetual), text."""
        d = self.cleaned_data
        days = 0 if d.get("perpetual") else int(d.get("duration_days") or 0)
        return {
            "price_wei": eth_to_wei(d["price_eth"]),
            "duration_s": days * 86_400,
            "terms": d.get("terms", ""),
        }


class ListingForm(forms.Form):
    price_eth = EthField(label="NFT price (ETH)", min_value=Decimal("0.000000000000000001"))

    def service_kwargs(self) -> dict:
        return {"price_wei": eth_to_wei(self.cleaned_data["price_eth"])}


class PredictForm(forms.Form):
    csv = forms.CharField(
        required=False,
        max_length=MAX_INPUT_BYTES,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="CSV rows (one example per row)",
    )
    file = forms.FileField(required=False, label="or a file (PNG/JPEG digit image or CSV)")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is None and not (data.get("csv") or "").strip():
            raise forms.ValidationError("Paste CSV rows or choose a file.")
        if upload is not None and upload.size > MAX_INPUT_BYTES:
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; at most {MAX_INPUT_BYTES:,}.")
        return data

    def inputs(self) -> bytes | str:
        upload = self.cleaned_data.get("file")
        return upload.read() if upload is not None else self.cleaned_data["csv"]
