from django.urls import path

from projects import views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("images/<int:image_id>/file", views.image_file, name="image-file"),
    path("p/<slug:slug>/", views.project_detail, name="detail"),
    path("p/<slug:slug>/settings/", views.project_settings, name="settings"),
    path("p/<slug:slug>/iterations/new", views.iteration_create, name="iteration-create"),
    path("p/<slug:slug>/i/<str:name>/", views.iteration_detail, name="iteration"),
    path("p/<slug:slug>/i/<str:name>/upload", views.iteration_upload, name="iteration-upload"),
    path("p/<slug:slug>/i/<str:name>/import-s3", views.iteration_import_s3, name="iteration-import-s3"),
]
