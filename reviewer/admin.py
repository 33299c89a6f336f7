from django.contrib import admin

from projects.admin import OwnedProjectsAdmin
from reviewer.models import Box, Review


@admin.register(Box)
class BoxAdmin(OwnedProjectsAdmin):
    project_path = "image__iteration__project"
    list_display = ["image", "label", "origin", "iou", "relabeled", "reviewer", "created_at"]
    list_filter = ["origin", "relabeled", ("label__project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["image__name", "reviewer__username"]
    list_select_related = ["image", "label", "reviewer"]
    raw_id_fields = ["image", "proposal", "reviewer"]
    show_full_result_count = False


@admin.register(Review)
class ReviewAdmin(OwnedProjectsAdmin):
    project_path = "image__iteration__project"
    list_display = ["image", "reviewer", "submitted_at", "elapsed_ms", "no_objects", "changed"]
    list_filter = ["no_objects", "changed", ("image__iteration__project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["image__name", "reviewer__username"]
    list_select_related = ["image", "reviewer"]
    raw_id_fields = ["image", "reviewer"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False
