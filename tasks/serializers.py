"""Output serializers shared by the task APIs (inputs live next to each API, HackSoft style)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from tasks.models import Ban, Identity, Participation, Task


class TaskOutputSerializer(serializers.ModelSerializer):
    creator = serializers.CharField(source="creator.username")
    reward_wei = serializers.CharField()
    reward_eth = serializers.CharField()
    participant_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "description",
            "status",
            "model_kind",
            "creator",
            "learning_rate",
            "local_epochs",
            "batch_size",
            "feature_shape",
            "label_set",
            "min_samples_per_participant",
            "rounds",
            "min_participants",
            "max_participants",
            "aggregation_rule",
            "contribution_scorer",
            "reward_wei",
            "reward_eth",
            "creator_share_bps",
            "licence_terms",
            "requires_credential",
            "validation_sha256",
            "spec_hash",
            "chain_id",
            "chain_task_id",
            "create_tx_hash",
            "participant_count",
            "created_at",
        ]


class TaskDetailOutputSerializer(TaskOutputSerializer):
    spec = serializers.SerializerMethodField()
    join_domain = serializers.SerializerMethodField()

    class Meta(TaskOutputSerializer.Meta):
        fields = [*TaskOutputSerializer.Meta.fields, "spec", "join_domain", "status_note"]

    def get_spec(self, task: Task) -> dict:
        return task.spec()

    def get_join_domain(self, task: Task) -> dict | None:
        """EIP-712 domain a Join for this task must use (None until the contracts are deployed)."""
        from bcfl_core.eip712 import join_domain
        from contracts.chain import ChainError, deployment_address

        try:
            return join_domain(
                chain_id=settings.CHAIN_ID, verifying_contract=deployment_address("TaskRegistry")
            )
        except ChainError:
            return None


class ParticipationOutputSerializer(serializers.ModelSerializer):
    task_title = serializers.CharField(source="task.title")
    task_status = serializers.CharField(source="task.status")
    identity = serializers.CharField(source="identity.did")

    class Meta:
        model = Participation
        fields = [
            "id",
            "task",
            "task_title",
            "task_status",
            "wallet",
            "identity",
            "node_public_key_hash",
            "data_summary",
            "data_summary_hash",
            "status",
            "joined_at",
        ]


class BanOutputSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()
    ban_tx_hash = serializers.CharField(source="ban_tx.tx_hash", default="")

    class Meta:
        model = Ban
        fields = [
            "id",
            "task",
            "reason",
            "evidence_hash",
            "expires_at",
            "created_at",
            "lifted_at",
            "lift_reason",
            "active",
            "ban_tx_hash",
        ]

    def get_active(self, ban: Ban) -> bool:
        return ban.is_active()


class IdentityOutputSerializer(serializers.ModelSerializer):
    wallets = serializers.SlugRelatedField(many=True, read_only=True, slug_field="address")
    chain_hash = serializers.CharField()
    bans = serializers.SerializerMethodField()
    banned = serializers.SerializerMethodField()

    class Meta:
        model = Identity
        fields = [
            "did",
            "kind",
            "nullifier",
            "credential_expires_at",
            "chain_hash",
            "wallets",
            "banned",
            "bans",
        ]

    def get_bans(self, identity: Identity) -> list[dict]:
        from tasks.selectors import identity_bans

        return BanOutputSerializer(identity_bans(identity=identity), many=True).data

    def get_banned(self, identity: Identity) -> bool:
        from tasks.selectors import identity_active_ban

        return identity_active_ban(identity=identity) is not None
