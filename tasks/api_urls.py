from django.urls import path

from tasks import apis

app_name = "tasks-api"

urlpatterns = [
    path("tasks/", apis.TaskListApi.as_view(), name="task-list"),
    path("tasks/<int:pk>/", apis.TaskDetailApi.as_view(), name="task-detail"),
    path("tasks/<int:pk>/join/", apis.TaskJoinApi.as_view(), name="task-join"),
    path("participations/mine/", apis.ParticipationMineApi.as_view(), name="participations-mine"),
    path("identity/mine/", apis.IdentityMineApi.as_view(), name="identity-mine"),
    path("identity/mine/credential/", apis.IdentityCredentialApi.as_view(), name="identity-credential"),
]
