"""DRF APIs under /api/v1/ for the participant CLI and scripts. Token or session auth (DRF defaults).

Errors have the API's one shape, ``{"error", "code", ...}`` (bcfl_site/api_errors.py: the exception
handler writes it, a schema hook documents it and the statuses every operation can return); join's
refusals also carry ``reason`` (and ``detail``, the same text as ``error``) for the participant CLI.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
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

# Besides the service's refusal codes, a join can fail like any request: the reason is then the error code.
_GENERIC_REASONS = (
    "not_authenticated",
    "authentication_failed",
    "parse_error",
    "permission_denied",
    "not_found",
    "not_acceptable",
    "unsupported_media_type",
    "method_not_allowed",
    "throttled",
)
_REFUSAL = inline_serializer(
    "JoinRefusal",
    {
        "error": serializers.CharField(),
        "code": serializers.CharField(help_text="`invalid` for field errors, else the same as `reason`."),
        "reason": serializers.ChoiceField(choices=[*services.JoinRefused.CODES, *_GENERIC_REASONS]),
        "detail": serializers.CharField(help_text="The same text as `error`."),
        "fields": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        ),
        "ban": inline_serializer(
            "JoinBan",
            {
                "reason": serializers.CharField(),
                "expires_at": serializers.DateTimeField(allow_null=True),
                "task": serializers.IntegerField(allow_null=True),
            },
            required=False,
        ),
    },
)
_REFUSAL_STATUS = {
    "not_recruiting": 409,
    "full": 409,
    "already_joined": 409,
    "banned": 403,
    "wrong_wallet": 403,
    "credential_required": 403,
    "contract_wallet": 403,
    "bad_signature": 400,
    "spec_mismatch": 400,
    "not_on_chain": 409,
}


class TaskListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = TaskOutputSerializer

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
        # The catalog is filled in TrainingConfig.ready(), before any URLconf imports this module.
        model_kind = serializers.ChoiceField(choices=catalog.model_kind_choices(), required=False)

    def get_queryset(self):
        # A plain dict: DRF reads an empty `?status=` of a QueryDict as "not given", and "" is no status.
        filters = self.FilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)  # an unknown status or kind is a 400, not an empty list
        return selectors.task_list(
            status=filters.validated_data.get("status"), model_kind=filters.validated_data.get("model_kind")
        )

    @extend_schema(summary="List public tasks", parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TaskDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="One task, with its committed spec and the EIP-712 domain for Join",
        responses=TaskDetailOutputSerializer,
    )
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
        participant = serializers.CharField(
            min_length=1, help_text="Your wallet address (the signed-in account)."
        )
        node_public_key = serializers.CharField(
            min_length=1, help_text="Your Flower SuperNode public key (PEM or OpenSSH)."
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
            400: OpenApiResponse(
                _REFUSAL,
                description="bad_signature, spec_mismatch (also for field errors: "
                "`code: invalid` with `fields`) or parse_error",
            ),
            401: OpenApiResponse(_REFUSAL, description="not_authenticated or authentication_failed"),
            403: OpenApiResponse(
                _REFUSAL,
                description="banned, wrong_wallet, credential_required, contract_wallet, or a "
                "missing CSRF token (permission_denied)",
            ),
            406: OpenApiResponse(_REFUSAL, description="not_acceptable"),
            409: OpenApiResponse(_REFUSAL, description="not_recruiting, full, already_joined, not_on_chain"),
            415: OpenApiResponse(_REFUSAL, description="unsupported_media_type: send JSON"),
        },
    )
    def post(self, request, pk: int):
        try:
            task = Task.objects.get(pk=pk)
        except Task.DoesNotExist:
            raise Http404 from None
        data = self.TaskJoinInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            participation = services.participation_join(task=task, user=request.user, **data.validated_data)
        except services.JoinRefused as refusal:
            body = {
                "error": refusal.message,
                "code": refusal.code,
                "reason": refusal.code,
                "detail": refusal.message,
            }
            if refusal.ban is not None:
                body["ban"] = {
                    "reason": refusal.ban.reason,
                    "expires_at": refusal.ban.expires_at,
                    "task": refusal.ban.task_id,
                }
            return Response(body, status=_REFUSAL_STATUS[refusal.code])
        return Response(ParticipationOutputSerializer(participation).data, status=status.HTTP_201_CREATED)

    def handle_exception(self, exc):
        """Every error of this operation carries ``reason`` (and ``detail``), as its schema says."""
        response = super().handle_exception(exc)
        body = response.data
        if isinstance(body, dict) and "error" in body and "reason" not in body:
            if body["code"] == "invalid":
                body["reason"] = "bad_signature" if "signature" in body.get("fields", {}) else "spec_mismatch"
            else:
                body["reason"] = body["code"]
            body["detail"] = body["error"]
        return response


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

    @extend_schema(
        summary="Link a trusted issuer's uniqueness credential to my wallet",
        request=CredentialInputSerializer,
        responses={
            200: IdentityOutputSerializer,
            400: OpenApiResponse(
                description="Invalid input (`code: invalid`) or a refused credential (`code: credential_refused`)"
            ),
        },
    )
    def post(self, request):
        data = self.CredentialInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            identity = services.identity_link_credential(wallet=request.user.username, **data.validated_data)
        except services.CredentialError as exc:
            raise exceptions.ValidationError(str(exc), code="credential_refused") from None
        return Response(IdentityOutputSerializer(identity).data)
