"""The holder's stakes page, at /stakes/ (mounted in bcfl_site/urls.py)."""

from django.urls import path

from training import views

app_name = "stakes"

urlpatterns = [
    path("", views.my_stakes, name="mine"),
]
