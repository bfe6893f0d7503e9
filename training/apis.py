"""DRF APIs for training progress and Merkle proofs (under /api/v1/). Errors: ``{"error", "code", ...}``."""

from __future__ import annotations

import re

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.models import Task
from training import holdings, selectors

_WALLET = r"^0x[0-9a-fA-F]{40}$"


def _public_task(request, pk: int) -> Task:
    task = Task.objects.filter(pk=pk).first()
    if task is None:
        raise Http404
    private = task.status in (Task.Status.DRAFT, Task.Status.REGISTERING)
    if private and task.creator_id != request.user.pk and not request.user.is_staff:
        raise Http404
    return task


_ROUND_FIELDS = {
    "round": serializers.IntegerField(),
    "accuracy": serializers.FloatField(allow_null=True),
    "loss": serializers.FloatField(allow_null=True),
    "accepted": serializers.IntegerField(),
    "rejected": serializers.IntegerField(),
    "global_model_hash": serializers.CharField(),
    "updates_root": serializers.CharField(),
    "commit_status": serializers.CharField(),
    "commit_tx_hash": serializers.CharField(),
    "commit_block": serializers.IntegerField(allow_null=True),
}


ROUND_SUMMARY = inline_serializer("RoundSummary", _ROUND_FIELDS, many=True)
ROUNDS_RESPONSE = inline_serializer(
    "TaskRounds",
    {"rounds_total": serializers.IntegerField(), "rounds": ROUND_SUMMARY},
)
TRAINING_RESPONSE = inline_serializer(
    "TaskTraining",
    {
        "rounds_total": serializers.IntegerField(),
        "rounds_done": serializers.IntegerField(),
        "rounds_committed": serializers.IntegerField(),
        "run": serializers.DictField(
            allow_null=True, help_text="attempt, status, flower_run_id, resumed_from_round, error"
        ),
        "rounds": ROUND_SUMMARY,
        "participants": serializers.ListField(
            child=serializers.DictField(),
            help_text="wallet, node_registered, node_id, updates accepted/rejected/excluded, last rejection reason, "
            "contribution (sum of round scores), flagged_rounds, last_flags ([{signal, value, threshold, detail}]), "
            "share_bps and malicious (after finalization)",
        ),
    },
)


class TaskTrainingApi(APIView):
    """Round x of y, the current run, and every participant's state (node registered, updates accepted/rejected)."""

    permission_classes = [AllowAny]

    @extend_schema(summary="Training progress of a task", responses={200: TRAINING_RESPONSE})
    def get(self, request, pk: int):
        return Response(selectors.task_training_progress(task=_public_task(request, pk)))


class TaskRoundsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Committed rounds: accuracy, loss, accepted/rejected counts, Merkle root, commit tx",
        responses={200: ROUNDS_RESPONSE},
    )
    def get(self, request, pk: int):
        task = _public_task(request, pk)
        return Response(
            {
                "rounds_total": task.rounds,
                "rounds": [selectors.round_summary(r) for r in selectors.task_rounds(task=task)],
            }
        )


class RoundProofApi(APIView):
    """Inclusion proof of one participant's update: only that participant, the task's creator or staff."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary="Merkle proof of a participant's update in a round (TaskRegistry.verifyUpdate arguments)",
        parameters=[
            OpenApiParameter(
                "wallet",
                str,
                required=True,
                allow_blank=False,
                pattern=_WALLET,
                description="The participant's address (0x and 40 hex digits, any case).",
            )
        ],
        responses={
            200: inline_serializer(
                "RoundProof",
                {
                    "round": serializers.IntegerField(),
                    "participant": serializers.CharField(),
                    "update_hash": serializers.CharField(),
                    "score": serializers.CharField(),
                    "accepted": serializers.BooleanField(),
                    "leaf": serializers.CharField(),
                    "proof": serializers.ListField(child=serializers.CharField()),
                    "root": serializers.CharField(),
                    "global_model_hash": serializers.CharField(
                        help_text="The round's committed global model hash (a verifyUpdate argument)."
                    ),
                    "accepted_count": serializers.IntegerField(
                        help_text="The round's committed accepted count (a verifyUpdate argument)."
                    ),
                    "reason": serializers.CharField(
                        help_text="Why the update was rejected (empty if accepted)."
                    ),
                    "signature": serializers.CharField(help_text="The participant's EIP-712 signature."),
                    "commit_tx_hash": serializers.CharField(),
                },
            ),
            400: OpenApiResponse(description="`wallet` is missing or not an address (`code: invalid`)"),
            403: OpenApiResponse(description="Not the participant, the creator or staff"),
            404: OpenApiResponse(description="No such round or no update of that wallet"),
        },
    )
    def get(self, request, pk: int, number: int):
        task = _public_task(request, pk)
        wallet = request.query_params.get("wallet", "")
        if not re.match(_WALLET, wallet):
            raise exceptions.ValidationError({"wallet": ["An Ethereum address: 0x and 40 hex digits."]})
        user = request.user
        allowed = user.is_authenticated and (
            user.is_staff or user.pk == task.creator_id or user.username.lower() == wallet.lower()
        )
        if not allowed:
            raise exceptions.PermissionDenied(
                "Only the participant itself, the task's creator or staff can fetch this proof."
            )
        proof = selectors.round_proof(task=task, number=number, wallet=wallet)
        if proof is None:
            raise Http404
        return Response(proof)


_PAYOUT = inline_serializer(
    "StakePayout",
    many=True,
    fields={
        "event": serializers.ChoiceField(choices=["DividendClaimed", "PayoutPushed"]),
        "amount_wei": serializers.CharField(help_text="wei, decimal string"),
        "tx_hash": serializers.CharField(),
        "block_number": serializers.IntegerField(),
    },
)
_WEI_OR_NULL = {"allow_null": True, "help_text": "wei, decimal string; null when the chain could not be read"}
STAKES_RESPONSE = inline_serializer(
    "MyStakes",
    {
        "wallet": serializers.CharField(
            help_text="The signed-in wallet (checksummed); empty for other accounts."
        ),
        "chain_error": serializers.CharField(help_text="Why chain fields are null (empty when read)."),
        "stakes": inline_serializer(
            "Stake",
            {
                "task_id": serializers.IntegerField(),
                "task_title": serializers.CharField(),
                "stake_id": serializers.IntegerField(
                    allow_null=True, help_text="StakeToken id = on-chain task id"
                ),
                "open": serializers.BooleanField(help_text="Stakes root on chain: shares can be claimed."),
                "shares": serializers.IntegerField(),
                "total_shares": serializers.IntegerField(),
                "percent": serializers.FloatField(),
                "shares_claimed": serializers.BooleanField(),
                "claimed_tx_hash": serializers.CharField(),
                "proof": serializers.ListField(child=serializers.CharField(), help_text="claimShares proof"),
                "claimable_wei": serializers.CharField(**_WEI_OR_NULL),
                "accumulated_wei": serializers.CharField(**_WEI_OR_NULL),
                "paid_wei": serializers.CharField(
                    help_text="Sum of the payouts below (wei, decimal string)."
                ),
                "payouts": _PAYOUT,
            },
            many=True,
        ),
    },
)


class StakesMineApi(APIView):
    """The signed-in wallet's stakes: shares, claim state, claimable and earned revenue, payout history."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="My stakes in trained models", responses={200: STAKES_RESPONSE})
    def get(self, request):
        wallet = holdings.wallet_address(request.user.username)
        rows, chain_error = holdings.wallet_stakes(wallet=wallet)
        return Response({"wallet": wallet, "chain_error": chain_error, "stakes": [h.as_dict() for h in rows]})
