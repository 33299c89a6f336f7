from django.urls import path

from projects import views
from projects.dashboard import views as dashboard_views
from projects.groundtruth import views as groundtruth_views
from projects.images import views as image_views
from projects.manifests import views as manifest_views
from projects.proposals import views as proposal_views
from projects.training import views as training_views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("images/<int:image_id>/file", image_views.image_file, name="image-file"),
    path("p/<slug:slug>/", dashboard_views.project_detail, name="detail"),
    path("p/<slug:slug>/settings/", views.project_settings, name="settings"),
    path("p/<slug:slug>/iterations/new", views.iteration_create, name="iteration-create"),
    path("p/<slug:slug>/i/<str:name>/", views.iteration_detail, name="iteration"),
    path("p/<slug:slug>/i/<str:name>/upload", image_views.iteration_upload, name="iteration-upload"),
    path("p/<slug:slug>/i/<str:name>/import-s3", image_views.iteration_import_s3, name="iteration-import-s3"),
    path("p/<slug:slug>/i/<str:name>/imports", image_views.iteration_import_runs,
         name="iteration-import-runs"),
    path("p/<slug:slug>/i/<str:name>/manifest/check", manifest_views.manifest_check, name="manifest-check"),
    path("p/<slug:slug>/i/<str:name>/manifest/download", manifest_views.manifest_download,
         name="manifest-download"),
    path("p/<slug:slug>/i/<str:name>/manifest/publish", manifest_views.manifest_publish,
         name="manifest-publish"),
    path("p/<slug:slug>/i/<str:name>/manifest/exports/<int:export_id>", manifest_views.manifest_export,
         name="manifest-export"),
    path("p/<slug:slug>/i/<str:name>/proposals/start", proposal_views.proposal_run_start,
         name="proposal-run-start"),
    path("p/<slug:slug>/i/<str:name>/proposals/runs/<int:run_id>", proposal_views.proposal_run_progress,
         name="proposal-run"),
    path("p/<slug:slug>/i/<str:name>/train", training_views.training_start, name="training-start"),
    path("p/<slug:slug>/i/<str:name>/train/runs/<int:run_id>", training_views.training_status,
         name="training-run"),
    path("p/<slug:slug>/i/<str:name>/groundtruth/dispatch", groundtruth_views.groundtruth_dispatch,
         name="groundtruth-dispatch"),
    path("p/<slug:slug>/i/<str:name>/groundtruth/sync", groundtruth_views.groundtruth_sync,
         name="groundtruth-sync"),
    path("p/<slug:slug>/i/<str:name>/groundtruth/jobs/<int:job_id>/stop", groundtruth_views.groundtruth_stop,
         name="groundtruth-stop"),
    path("p/<slug:slug>/models/<int:model_id>/start", proposal_views.model_start, name="model-start"),
    path("p/<slug:slug>/models/<int:model_id>/stop", proposal_views.model_stop, name="model-stop"),
    path("p/<slug:slug>/models/<int:model_id>/refresh", proposal_views.model_refresh, name="model-refresh"),
]
