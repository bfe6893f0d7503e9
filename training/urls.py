"""Training's pages under /tasks/<id>/ (mounted next to `tasks.urls` in bcfl_site/urls.py)."""

from django.urls import path

from training import views

app_name = "training"

urlpatterns = [
    path("<int:pk>/training/start/", views.task_training_start, name="task-start"),
]
