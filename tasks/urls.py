from django.urls import path

from tasks import views

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("new/", views.task_create, name="create"),
    path("identity/", views.identity_mine, name="identity"),
    path("<int:pk>/", views.task_detail, name="detail"),
    path("<int:pk>/register/", views.task_register, name="register"),
    path("<int:pk>/register/start/", views.task_register_start, name="register-start"),
    path("<int:pk>/register/abandon/", views.task_register_abandon, name="register-abandon"),
    path("<int:pk>/register/confirm/", views.task_register_confirm, name="register-confirm"),
    path("<int:pk>/delete/", views.task_delete, name="delete"),
    path("<int:pk>/cancel/", views.task_cancel, name="cancel"),
    path("<int:pk>/cancel/confirm/", views.task_cancel_confirm, name="cancel-confirm"),
]
