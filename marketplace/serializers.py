"""Output serializers of the marketplace API (inputs live next to each API). Wei amounts are decimal strings."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from marketplace.models import Licence, Listing, ModelToken, Purchase


@extend_schema_field(OpenApiTypes.STR)
class WeiField(serializers.Field):
    """An amount in wei as a decimal string of digits (never an exponent), or null."""

    def to_representation(self, value):
        return None if value is None else str(int(value))


class ModelOutputSerializer(serializers.ModelSerializer):
    """A minted model in the list (annotations of `marketplace.selectors.model_list`)."""

    task_id = serializers.IntegerField(source="task.pk")
    title = serializers.CharField(source="task.title")
    description = serializers.CharField(source="task.description")
    model_kind = serializers.CharField(source="task.model_kind")
    creator = serializers.CharField(source="task.creator.username")
    licence_price_wei = WeiField(source="licence_price", allow_null=True)
    licence_duration_s = serializers.IntegerField(source="licence_duration", allow_null=True)
    licence_terms_hash = serializers.CharField(allow_null=True)
    nft_price_wei = WeiField(source="nft_price", allow_null=True)
    licences_sold = serializers.IntegerField()

    class Meta:
        model = ModelToken
        fields = [
            "token_id",
            "task_id",
            "title",
            "description",
            "model_kind",
            "creator",
            "owner",
            "minted_at",
            "licence_price_wei",
            "licence_duration_s",
            "licence_terms_hash",
            "nft_price_wei",
            "licences_sold",
        ]

    def to_representation(self, instance: ModelToken) -> dict:
        """The declared fields' output (the OpenAPI schema is built from them), built directly: DRF's generic
        field-by-field path costs ~50 µs a row, a third of the API list's Python time. Equal to the generic
        output (tests/marketplace/test_apis.py)."""
        task = instance.task
        duration = instance.licence_duration
        return {
            "token_id": instance.token_id,
            "task_id": task.pk,
            "title": str(task.title),
            "description": str(task.description),
            "model_kind": str(task.model_kind),
            "creator": str(task.creator.username),
            "owner": str(instance.owner),
            "minted_at": self.fields["minted_at"].to_representation(instance.minted_at),
            "licence_price_wei": None if instance.licence_price is None else str(int(instance.licence_price)),
            "licence_duration_s": None if duration is None else int(duration),
            "licence_terms_hash": None
            if instance.licence_terms_hash is None
            else str(instance.licence_terms_hash),
            "nft_price_wei": None if instance.nft_price is None else str(int(instance.nft_price)),
            "licences_sold": int(instance.licences_sold),
        }


class ModelDetailOutputSerializer(ModelOutputSerializer):
    to_representation = serializers.ModelSerializer.to_representation  # one row: the generic path
    licence_terms = serializers.CharField(allow_null=True, help_text="The terms text in force (null: none).")
    model_sha256 = serializers.CharField(allow_null=True, help_text="sha256 of the safetensors file.")
    metrics = serializers.DictField(allow_null=True)
    onnx_ready = serializers.BooleanField()
    feature_shape = serializers.ListField(source="task.feature_shape", child=serializers.IntegerField())
    label_set = serializers.ListField(source="task.label_set", child=serializers.IntegerField())

    class Meta(ModelOutputSerializer.Meta):
        fields = [
            *ModelOutputSerializer.Meta.fields,
            "licence_terms",
            "model_sha256",
            "metrics",
            "onnx_ready",
            "feature_shape",
            "label_set",
        ]


class ListingOutputSerializer(serializers.ModelSerializer):
    token_id = serializers.IntegerField(source="token.token_id")
    title = serializers.CharField(source="token.task.title")
    price_wei = WeiField()

    class Meta:
        model = Listing
        fields = ["token_id", "title", "seller", "price_wei", "tx_hash", "updated_at"]


class LicenceOutputSerializer(serializers.ModelSerializer):
    token_id = serializers.IntegerField(source="token.token_id")
    title = serializers.CharField(source="token.task.title")
    price_wei = WeiField()
    valid = serializers.SerializerMethodField()

    class Meta:
        model = Licence
        fields = [
            "licence_id",
            "token_id",
            "title",
            "buyer",
            "price_wei",
            "terms_hash",
            "expires_at",
            "valid",
            "tx_hash",
            "created_at",
        ]

    def get_valid(self, obj: Licence) -> bool:
        return obj.is_valid()


class PurchaseOutputSerializer(serializers.ModelSerializer):
    token_id = serializers.IntegerField(source="token.token_id")
    price_wei = WeiField()

    class Meta:
        model = Purchase
        fields = ["tx_hash", "kind", "token_id", "buyer", "price_wei", "source", "created_at"]
