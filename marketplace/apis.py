"""Marketplace API under /api/v1/ (DRF; token or session auth). Errors have the API's one shape
``{"error", "code"}`` (bcfl_site/api_errors.py); marketplace refusals carry their own codes
(`marketplace.services.errors.MarketplaceRefused`)."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from marketplace import selectors, services
from marketplace.models import ModelToken
from marketplace.serializers import (
    LicenceOutputSerializer,
    ListingOutputSerializer,
    ModelDetailOutputSerializer,
    ModelOutputSerializer,
    PurchaseOutputSerializer,
)
from tasks import catalog
from training.models import FinalModel, OnnxExport
from training.predict import MAX_INPUT_BYTES, ModelNotReady, PredictInputError, predict

_STATUS = {"not_found": 404, "forbidden": 403, "not_owner": 403, "wrong_sender": 403, "not_mined": 409}
_STATUS.update(dict.fromkeys(("own_model", "not_for_sale", "not_listed", "terms_changed"), 409))


class Refused(exceptions.APIException):
    def __init__(self, refusal: services.MarketplaceRefused):
        self.status_code = _STATUS.get(refusal.code, 400)
        super().__init__(refusal.message, refusal.code)


def _token(token_id: int) -> ModelToken:
    token = selectors.model_get(token_id=token_id)
    if token is None:
        raise Http404
    return token


class ModelListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = ModelOutputSerializer

    class FilterSerializer(serializers.Serializer):
        # The pattern tells clients what DRF refuses anyway (null characters): documented, not a surprise 400.
        q = serializers.RegexField(
            r"^[^\x00]*$",
            required=False,
            allow_blank=True,
            max_length=200,
            help_text="Words of the title, description, model kind or dataset (no null characters).",
        )
        model_kind = serializers.ChoiceField(choices=catalog.model_kind_choices(), required=False)
        licence_for_sale = serializers.BooleanField(
            required=False, help_text="Licence terms in force or not."
        )
        nft_for_sale = serializers.BooleanField(required=False, help_text="The NFT listed or not.")
        owner = serializers.RegexField(r"^0x[0-9a-fA-F]{40}$", required=False, help_text="Owner's address.")
        sort = serializers.ChoiceField(choices=list(selectors.SORTS), required=False, default="newest")

    def get_queryset(self):
        filters = self.FilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return selectors.model_list(**filters.validated_data)

    @extend_schema(
        summary="Models for sale or licence: search, filters, sort, pages", parameters=[FilterSerializer]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ModelDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="One model NFT: owner, licence terms in force, listing", responses=ModelDetailOutputSerializer
    )
    def get(self, request, token_id: int):
        token = _token(token_id)
        terms = selectors.active_licence_terms(token=token)
        final = FinalModel.objects.filter(task_id=token.task_id).first()
        token.licence_terms_text = terms.terms if terms else None
        token.model_sha256 = final.sha256 if final else None
        token.metrics = final.metrics if final else None
        token.onnx_ready = bool(final) and OnnxExport.objects.filter(final_model=final).exists()
        data = ModelDetailOutputSerializer(token).data
        data["licence_terms"] = token.licence_terms_text
        return Response(data)


class ListingListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = ListingOutputSerializer

    def get_queryset(self):
        return selectors.listings_active()

    @extend_schema(summary="NFTs listed for sale now")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


_TERMS = inline_serializer(
    "LicenceTermsOut",
    {
        "token_id": serializers.IntegerField(),
        "price_wei": serializers.CharField(),
        "duration_s": serializers.IntegerField(help_text="0 = perpetual"),
        "terms": serializers.CharField(),
        "terms_hash": serializers.CharField(help_text="keccak256 of `terms` (committed on chain)"),
        "set_by": serializers.CharField(),
    },
)


class LicenceTermsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Licence terms in force for a model (text, hash, price, duration)",
        responses={200: _TERMS, 404: OpenApiResponse(description="No such model, or no licence for sale")},
    )
    def get(self, request, token_id: int):
        token = _token(token_id)
        terms = selectors.active_licence_terms(token=token)
        if terms is None:
            raise exceptions.NotFound("Licences of this model are not for sale.")
        return Response(
            {
                "token_id": token.token_id,
                "price_wei": str(terms.price_wei),
                "duration_s": terms.duration_s,
                "terms": terms.terms,
                "terms_hash": terms.terms_hash,
                "set_by": terms.set_by,
            }
        )


class PurchaseConfirmApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        tx_hash = serializers.RegexField(r"^0x[0-9a-fA-F]{64}$", help_text="The purchase transaction's hash.")

    @extend_schema(
        summary="Confirm a licence or NFT purchase from its transaction (verified from the receipt and event)",
        request=InputSerializer,
        responses={
            200: PurchaseOutputSerializer,
            201: PurchaseOutputSerializer,
            400: OpenApiResponse(
                description="Reverted (decoded reason in words), not a purchase, wrong contract"
            ),
            403: OpenApiResponse(
                description="Sent by another wallet (`wrong_sender`), or a missing CSRF token"
            ),
            409: OpenApiResponse(description="`not_mined`: not mined yet, try again in a few seconds"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            purchase, created = services.purchase_confirm(
                tx_hash=data.validated_data["tx_hash"], user=request.user
            )
        except services.MarketplaceRefused as refusal:
            raise Refused(refusal) from None
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PurchaseOutputSerializer(purchase).data, status=code)


class LicenceMineApi(ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = LicenceOutputSerializer

    def get_queryset(self):
        return selectors.licences_of_user(user=self.request.user)

    @extend_schema(summary="My licences (valid and expired)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


_LINKS = inline_serializer(
    "DownloadLinks",
    {
        "expires_in_s": serializers.IntegerField(),
        "files": inline_serializer(
            "DownloadLink",
            {
                "kind": serializers.CharField(),
                "filename": serializers.CharField(),
                "url": serializers.CharField(),
            },
            many=True,
        ),
    },
)


class DownloadLinksApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Short-lived signed download links (weights, ONNX, model card, loading example)",
        request=None,
        responses={
            200: _LINKS,
            403: OpenApiResponse(description="Not the owner nor a holder of a valid licence"),
        },
    )
    def post(self, request, token_id: int):
        token = _token(token_id)
        try:
            links = services.download_links(token=token, user=request.user)
        except services.MarketplaceRefused as refusal:
            raise Refused(refusal) from None
        files = [
            {
                "kind": link["kind"],
                "filename": link["filename"],
                "url": request.build_absolute_uri(f"/api/v1/downloads/{link['signed']}/"),
            }
            for link in links
        ]
        return Response({"expires_in_s": services.LINK_MAX_AGE_S, "files": files})


class DownloadFileApi(APIView):
    """Serve one file of a signed link from private storage (not an API operation: excluded from the schema)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(exclude=True)
    def get(self, request, signed: str):
        try:
            _token_obj, f = services.download_open(signed=signed, user=request.user)
        except services.MarketplaceRefused as refusal:
            raise Refused(refusal) from None
        if f.field is None:
            response = HttpResponse(f.text, content_type=f.content_type)
            response["Content-Disposition"] = f'attachment; filename="{f.filename}"'
            return response
        return FileResponse(
            f.field.open("rb"), as_attachment=True, filename=f.filename, content_type=f.content_type
        )


class PredictThrottle(UserRateThrottle):
    scope = "marketplace-predict"
    rate = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get("marketplace-predict", "30/min")

    def get_rate(self):
        return self.rate


class PredictApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [PredictThrottle]
    parser_classes = [MultiPartParser, JSONParser]

    class FileInput(serializers.Serializer):
        file = serializers.FileField(
            help_text=f"PNG/JPEG (digits) or CSV, at most {MAX_INPUT_BYTES:,} bytes."
        )

    class CsvInput(serializers.Serializer):
        csv = serializers.CharField(max_length=MAX_INPUT_BYTES, help_text="CSV rows, one example per row.")

    @extend_schema(
        summary="Predict with a model (owner and licence holders; 30 requests a minute)",
        request={"multipart/form-data": FileInput, "application/json": CsvInput},
        responses={
            200: inline_serializer(
                "Predictions",
                {
                    "predictions": serializers.ListField(
                        child=serializers.DictField(), help_text="{label, probabilities}"
                    )
                },
            ),
            400: OpenApiResponse(
                description="The input does not fit the model (`code` says how: column_count, …)"
            ),
            403: OpenApiResponse(description="Not the owner nor a holder of a valid licence"),
            409: OpenApiResponse(description="`model_not_ready`: the ONNX export is not ready yet"),
            429: OpenApiResponse(description="More than 30 predictions a minute (`Retry-After`)"),
        },
    )
    def post(self, request, token_id: int):
        token = _token(token_id)
        if not selectors.has_access(token=token, user=request.user):
            raise exceptions.PermissionDenied(
                "Only the NFT's owner and holders of an unexpired licence can use this model."
            )
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        serializer = self.FileInput if upload is not None else self.CsvInput
        data = serializer(data=request.data)
        data.is_valid(raise_exception=True)
        if upload is not None and upload.size > MAX_INPUT_BYTES:
            raise exceptions.ValidationError(
                f"The file is {upload.size:,} bytes; at most {MAX_INPUT_BYTES:,}.", "too_large"
            )
        inputs = upload.read() if upload is not None else data.validated_data["csv"]
        final = FinalModel.objects.filter(task_id=token.task_id).select_related("task").first()
        try:
            if final is None or not OnnxExport.objects.filter(final_model=final).exists():
                raise ModelNotReady
            rows = predict(final, inputs)
        except PredictInputError as exc:
            raise exceptions.ValidationError(exc.message, exc.code) from None
        except ModelNotReady:
            exc = exceptions.APIException(
                "The model's ONNX export is not ready yet; try again later.", "model_not_ready"
            )
            exc.status_code = 409
            raise exc from None
        return Response({"predictions": rows})
