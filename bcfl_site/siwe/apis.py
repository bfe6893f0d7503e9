"""SIWE for non-browser clients (the participant CLI): a nonce, then a signed message for a DRF token."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from bcfl_site.siwe.models import SiweNonce
from bcfl_site.siwe.services import (
    SiweError,
    siwe_message_verify,
    siwe_nonce_issue,
    siwe_token_issue,
    user_get_or_create_for_address,
)
from bcfl_site.siwe.views import site_origin

ErrorSerializer = inline_serializer(
    name="SiweError",
    fields={"error": serializers.CharField(), "code": serializers.CharField()},
)


class SiweNonceCreateApi(APIView):
    """Anonymous and cookie-less: no authentication classes, so no session and no CSRF involved."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    # Nested Input/OutputSerializer names collide across APIs in the schema: name them explicitly.
    @extend_schema_serializer(component_name="SiweNonce")
    class OutputSerializer(serializers.Serializer):
        nonce = serializers.CharField()
        domain = serializers.CharField(help_text="Request host; the message's domain must equal it.")
        uri = serializers.CharField(help_text="Site origin; the message's URI must have this origin.")
        chain_id = serializers.IntegerField()
        issued_at = serializers.CharField()
        expiration_time = serializers.CharField(help_text="The nonce's expiry; use it as Expiration Time.")
        statement = serializers.CharField()

    @extend_schema(
        operation_id="auth_siwe_nonce",
        tags=["auth"],
        request=None,
        responses={201: OutputSerializer},
        summary="Get a single-use SIWE nonce",
        description=(
            "Returns a nonce (single-use, expires after `expiration_time`) and the fields the EIP-4361 "
            "message must carry. Sign the message with the wallet key (EIP-191 personal_sign) and POST it "
            "to `/api/v1/auth/siwe/token`."
        ),
    )
    def post(self, request):
        challenge = siwe_nonce_issue(
            purpose=SiweNonce.Purpose.TOKEN, domain=request.get_host(), uri=site_origin(request)
        )
        return Response(self.OutputSerializer(asdict(challenge)).data, status=status.HTTP_201_CREATED)


class SiweTokenCreateApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="SiweTokenRequest")
    class InputSerializer(serializers.Serializer):
        message = serializers.CharField(max_length=4096, trim_whitespace=False)
        signature = serializers.CharField(max_length=200)

    @extend_schema_serializer(component_name="SiweToken")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
        address = serializers.CharField(help_text="Checksummed address; also the username.")

    @extend_schema(
        operation_id="auth_siwe_token",
        tags=["auth"],
        request=InputSerializer,
        responses={200: OutputSerializer, 400: ErrorSerializer, 403: ErrorSerializer},
        summary="Exchange a signed SIWE message for an API token",
        description=(
            "Verifies the EIP-4361 message (nonce from `/api/v1/auth/siwe/nonce`, domain, URI, chain id, "
            "expiry, EIP-55 address) and its signature; the nonce is burned even when verification fails. "
            "Creates the user on first use and returns its DRF token."
        ),
        examples=[
            OpenApiExample(
                "Rejected",
                value={"error": "This sign-in nonce has already been used.", "code": "nonce_used"},
                response_only=True,
                status_codes=["400"],
            )
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            address = siwe_message_verify(
                **serializer.validated_data,
                domain=request.get_host(),
                uri=site_origin(request),
                purpose=SiweNonce.Purpose.TOKEN,
            )
        except SiweError as exc:
            return Response({"error": exc.message, "code": exc.code}, status=status.HTTP_400_BAD_REQUEST)
        user = user_get_or_create_for_address(address=address)
        if not user.is_active:
            return Response(
                {"error": "This account is inactive. Contact the platform admins.", "code": "inactive"},
                status=status.HTTP_403_FORBIDDEN,
            )
        token = siwe_token_issue(user=user)
        return Response(self.OutputSerializer({"token": token.key, "address": address}).data)
