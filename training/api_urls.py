from django.urls import path

from training import apis

app_name = "training-api"

urlpatterns = [
    path("tasks/<int:pk>/training/", apis.TaskTrainingApi.as_view(), name="task-training"),
    path("tasks/<int:pk>/rounds/", apis.TaskRoundsApi.as_view(), name="task-rounds"),
    path("tasks/<int:pk>/rounds/<int:number>/proof/", apis.RoundProofApi.as_view(), name="round-proof"),
    path("stakes/mine/", apis.StakesMineApi.as_view(), name="stakes-mine"),
]
