from django.urls import path

from marketplace import apis

app_name = "marketplace-api"

urlpatterns = [
    path("models/", apis.ModelListApi.as_view(), name="model-list"),
    path("models/<int:token_id>/", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<int:token_id>/licence-terms/", apis.LicenceTermsApi.as_view(), name="licence-terms"),
    path("models/<int:token_id>/downloads/", apis.DownloadLinksApi.as_view(), name="download-links"),
    path("models/<int:token_id>/predict/", apis.PredictApi.as_view(), name="predict"),
    path("listings/", apis.ListingListApi.as_view(), name="listing-list"),
    path("purchases/confirm/", apis.PurchaseConfirmApi.as_view(), name="purchase-confirm"),
    path("licences/mine/", apis.LicenceMineApi.as_view(), name="licences-mine"),
    path("downloads/<str:signed>/", apis.DownloadFileApi.as_view(), name="download-file"),
]
