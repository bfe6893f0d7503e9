from django.urls import path

from marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.model_browse, name="browse"),
    path("mine/", views.my_models, name="mine"),
    path("purchases/", views.my_purchases, name="purchases"),
    path("models/<int:token_id>/", views.model_detail, name="detail"),
    path("models/<int:token_id>/downloads/", views.model_downloads, name="downloads"),
    path("models/<int:token_id>/use/", views.model_predict, name="predict"),
    path("models/<int:token_id>/tx/<slug:action>/", views.model_tx, name="tx"),
    path("models/<int:token_id>/confirm/<slug:action>/", views.model_confirm, name="confirm"),
]
