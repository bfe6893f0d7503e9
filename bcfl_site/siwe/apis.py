"""SIWE for non-browser clients (the participant CLI): a nonce, then a signed message for a DRF token."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from bcfl_site.siwe.models import SiweNonce
from bcfl_site.siwe.services import (
    SIGNATURE_HELP,
    SIGNATURE_PATTERN,
    SiweError,
    siwe_message_verify,
    siwe_nonce_issue,
    siwe_token_issue,
    user_get_or_create_for_address,
)
from bcfl_site.siwe.views import site_origin

SIWE_CODES = (
    "`malformed` (the message is not EIP-4361; the error names the field), `address_checksum`, "
    "`signature_malformed`, `signature` (not signed by the message's address), `contract_wallet_invalid` "
    "(a smart-contract wallet answered EIP-1271 isValidSignature with something else than 0x1626ba7e), "
    "`contract_wallet_reverted` (the call reverted: not an EIP-1271 wallet), `chain_unavailable` (the chain "
    "could not be asked about a contract wallet), `address_mismatch`, "
    "`nonce_unknown`, `nonce_used`, `nonce_expired`, `nonce_purpose`, `domain`, `scheme`, `uri`, `chain_id`, "
    "`expired` (Expiration Time passed), `not_yet_valid` (Not Before or Issued At in the future)"
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
        expiration_time = serializers.CharField(
            help_text="The nonce's expiry. Expiration Time is optional in the message; this value is a good one."
        )
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
        message = serializers.CharField(
            min_length=1,
            max_length=4096,
            trim_whitespace=False,
            help_text="The EIP-4361 text, exactly as signed.",
        )
        signature = serializers.RegexField(
            SIGNATURE_PATTERN,
            help_text=(
                "EIP-191 personal_sign signature: 130 hex digits, with or without 0x; a smart-contract "
                "wallet's (EIP-1271) may have another length."
            ),
            error_messages={"invalid": SIGNATURE_HELP},
        )

    @extend_schema_serializer(component_name="SiweToken")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
        address = serializers.CharField(help_text="Checksummed address; also the username.")

    @extend_schema(
        operation_id="auth_siwe_token",
        tags=["auth"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(
                description=f"Invalid input (`code: invalid`, with `fields`) or a refused sign-in; `code` is one of {SIWE_CODES}."
            ),
            403: OpenApiResponse(description="The account is inactive (`code: inactive`)."),
        },
        summary="Exchange a signed SIWE message for an API token",
        description=(
            "Verifies the EIP-4361 message (nonce from `/api/v1/auth/siwe/nonce`, domain, URI, chain id, "
            "expiry, EIP-55 address) and its signature; the nonce is burned even when verification fails. "
            "Expiration Time, Not Before, Request ID and Resources are optional, as in EIP-4361. "
            "Creates the user on first use and returns its DRF token."
        ),
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
            raise exceptions.ValidationError(exc.message, code=exc.code) from None
        user = user_get_or_create_for_address(address=address)
        if not user.is_active:
            raise exceptions.PermissionDenied(
                "This account is inactive. Contact the platform admins.", code="inactive"
            )
        token = siwe_token_issue(user=user)
        return Response(self.OutputSerializer({"token": token.key, "address": address}).data)
