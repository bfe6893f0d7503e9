"""DRF APIs under /api/v1/ for the participant CLI and scripts. Token or session auth (DRF defaults)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks import catalog, selectors, services
from tasks.models import Task
from tasks.serializers import (
    IdentityOutputSerializer,
    ParticipationOutputSerializer,
    TaskDetailOutputSerializer,
    TaskOutputSerializer,
)

_REFUSAL = inline_serializer(
    "JoinRefusal",
    {
        "reason": serializers.ChoiceField(choices=services.JoinRefused.CODES),
        "detail": serializers.CharField(),
        "ban": serializers.DictField(required=False),
    },
)
_REFUSAL_STATUS = {"not_recruiting": 409, "full": 409, "already_joined": 409, "banned": 403, "wrong_wallet": 403,
                   "credential_required": 403, "bad_signature": 400, "spec_mismatch": 400, "not_on_chain": 409}  # fmt: skip


class TaskListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = TaskOutputSerializer

    def get_queryset(self):
        return selectors.task_list(status=self.request.query_params.get("status") or None,
                                   model_kind=self.request.query_params.get("model_kind") or None)  # fmt: skip

    @extend_schema(
        summary="List public tasks",
        parameters=[
            OpenApiParameter("status", str, enum=[s for s, _ in Task.Status.choices]),
            OpenApiParameter("model_kind", str, enum=[k for k, _ in catalog.model_kind_choices()]),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TaskDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(summary="One task, with its committed spec and the EIP-712 domain for Join",
                   responses=TaskDetailOutputSerializer)  # fmt: skip
    def get(self, request, pk: int):
        try:
            task = selectors.task_get(pk=pk)
        except Task.DoesNotExist:
            raise Http404 from None
        private = task.status in (Task.Status.DRAFT, Task.Status.REGISTERING)
        if private and task.creator_id != request.user.pk and not request.user.is_staff:
            raise Http404
        return Response(TaskDetailOutputSerializer(task).data)


class TaskJoinApi(APIView):
    """Join a recruiting task with a signed EIP-712 Join (see tasks/eip712.py for the exact types)."""

    permission_classes = [IsAuthenticated]

    class TaskJoinInputSerializer(serializers.Serializer):
        participant = serializers.CharField(help_text="Your wallet address (the signed-in account).")
        node_public_key = serializers.CharField(
            help_text="Your Flower SuperNode public key (PEM or OpenSSH)."
        )
        data_summary = serializers.DictField(
            help_text='{"feature_shape": [64], "examples_per_label": {"0": 40, ...}, "n": 400} — never the data.'
        )
        signature = serializers.RegexField(
            r"^0x[0-9a-fA-F]{130}$", help_text="eth_signTypedData_v4 signature."
        )

    @extend_schema(
        summary="Join a task",
        request=TaskJoinInputSerializer,
        responses={
            201: ParticipationOutputSerializer,
            400: _REFUSAL,
            403: _REFUSAL,
            409: _REFUSAL,
            404: OpenApiResponse(description="No such task"),
        },  # fmt: skip
    )
    def post(self, request, pk: int):
        try:
            task = Task.objects.get(pk=pk)
        except Task.DoesNotExist:
            raise Http404 from None
        data = self.TaskJoinInputSerializer(data=request.data)
        if not data.is_valid():
            detail = "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in data.errors.items())
            return Response({"reason": "bad_signature" if "signature" in data.errors else "spec_mismatch",
                             "detail": detail}, status=status.HTTP_400_BAD_REQUEST)  # fmt: skip
        try:
            participation = services.participation_join(task=task, user=request.user, **data.validated_data)
        except services.JoinRefused as refusal:
            body = {"reason": refusal.code, "detail": refusal.message}
            if refusal.ban is not None:
                body["ban"] = {"reason": refusal.ban.reason, "expires_at": refusal.ban.expires_at,
                               "task": refusal.ban.task_id}  # fmt: skip
            return Response(body, status=_REFUSAL_STATUS[refusal.code])
        return Response(ParticipationOutputSerializer(participation).data, status=status.HTTP_201_CREATED)


class ParticipationMineApi(ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = ParticipationOutputSerializer

    def get_queryset(self):
        return selectors.participations_of_user(user=self.request.user)

    @extend_schema(summary="My participations")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class IdentityMineApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="My identity: DID, wallets, bans (why and until when)", responses=IdentityOutputSerializer
    )
    def get(self, request):
        identity = services.identity_for_wallet(address=request.user.username)
        return Response(IdentityOutputSerializer(identity).data)


class IdentityCredentialApi(APIView):
    permission_classes = [IsAuthenticated]

    class CredentialInputSerializer(serializers.Serializer):
        credential = serializers.DictField(
            help_text='{"subject": "0x…", "nullifier": "0x…32 bytes", "expiresAt": 1767225600}'
        )
        signature = serializers.RegexField(
            r"^0x[0-9a-fA-F]{130}$", help_text="The issuer's EIP-712 signature."
        )

    @extend_schema(summary="Link a trusted issuer's uniqueness credential to my wallet", request=CredentialInputSerializer,
                   responses={200: IdentityOutputSerializer, 400: OpenApiResponse(description="Refused, with detail")})  # fmt: skip
    def post(self, request):
        data = self.CredentialInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            identity = services.identity_link_credential(wallet=request.user.username, **data.validated_data)
        except services.CredentialError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(IdentityOutputSerializer(identity).data)
