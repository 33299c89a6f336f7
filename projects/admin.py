from django.contrib import admin

from projects.models import (
    Export,
    GroundTruthJob,
    Image,
    ImportRun,
    Iteration,
    LabelClass,
    Membership,
    ModelVersion,
    Project,
    Proposal,
    ProposalOutcome,
    ProposalRun,
    TrainingRun,
)


class OwnedProjectsAdmin(admin.ModelAdmin):
    """Staff who are not superusers see only the rows of projects they own.

    project_path is the lookup from the model to its Project ("" for Project itself).
    """

    project_path = "project"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**_owned_by(request.user, self.project_path)).distinct()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Without this a staff owner could attach rows (a membership!) to someone else's project.
        if db_field.related_model is Project and not request.user.is_superuser:
            kwargs["queryset"] = Project.objects.filter(**_owned_by(request.user, "")).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _owned_by(user, project_path):
    prefix = f"{project_path}__" if project_path else ""
    return {f"{prefix}memberships__user": user, f"{prefix}memberships__role": Membership.Role.OWNER}


class LabelInline(admin.TabularInline):
    model = LabelClass
    extra = 0
    fields = ["name", "color", "hotkey", "order"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(OwnedProjectsAdmin):
    project_path = ""
    list_display = ["slug", "name", "region", "image_bucket", "review_order", "created_at"]
    search_fields = ["slug", "name", "image_bucket"]
    list_filter = ["region", "review_order"]
    inlines = [LabelInline, MembershipInline]
    BUCKET_FIELDS = ("image_bucket", "output_location", "published_images_uri")

    def get_readonly_fields(self, request, obj=None):
        # Which buckets a project reads and writes decides what the server's credentials touch:
        # only superusers change them (Project.clean() still holds them to LOUPE_ALLOWED_BUCKETS).
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += [name for name in self.BUCKET_FIELDS if name not in fields]
        return fields


@admin.register(LabelClass)
class LabelClassAdmin(OwnedProjectsAdmin):
    list_display = ["name", "project", "hotkey", "color", "order"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(OwnedProjectsAdmin):
    list_display = ["user", "project", "role"]
    list_filter = ["role", ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "project__slug"]
    autocomplete_fields = ["user"]


@admin.register(Iteration)
class IterationAdmin(OwnedProjectsAdmin):
    list_display = ["name", "project", "shown_model", "created_at"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "project__slug"]
    raw_id_fields = ["shown_model"]


@admin.register(Image)
class ImageAdmin(OwnedProjectsAdmin):
    project_path = "iteration__project"
    list_display = [
        "name", "iteration", "status", "no_objects", "width", "height", "priority",
        "reviewed_by", "leased_by", "lease_expires_at",
    ]
    list_filter = ["status", "no_objects", ("iteration__project", admin.RelatedOnlyFieldListFilter), "format"]
    search_fields = ["name", "source"]
    list_select_related = ["iteration__project", "reviewed_by", "leased_by"]
    raw_id_fields = ["iteration", "reviewed_by", "leased_by"]
    show_full_result_count = False


@admin.register(ModelVersion)
class ModelVersionAdmin(OwnedProjectsAdmin):
    list_display = ["name", "project", "kind", "status", "f1", "training_images", "created_at"]
    list_filter = ["kind", "status", ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "arn"]
    raw_id_fields = ["trained_from"]
    readonly_fields = ["label_thresholds"]

    @admin.display(description="Thresholds by label")
    def label_thresholds(self, obj):
        # The stored field is keyed by label id; this shows the names people know them by.
        if obj.pk is None:
            return "-"
        return ", ".join(
            f"{label.name}: {obj.threshold_for(label.pk):g}" for label in obj.project.labels.all()
        )


@admin.register(Proposal)
class ProposalAdmin(OwnedProjectsAdmin):
    project_path = "image__iteration__project"
    list_display = ["image", "label", "confidence", "left", "top", "width", "height", "model_version"]
    list_filter = [
        ("model_version", admin.RelatedOnlyFieldListFilter),
        ("label__project", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["image__name"]
    list_select_related = ["image", "label", "model_version"]
    raw_id_fields = ["image", "label", "model_version"]
    show_full_result_count = False


class RunAdmin(OwnedProjectsAdmin):
    """Records of long work: for looking into what happened, not for editing."""

    project_path = "iteration__project"
    list_filter = ["status", ("iteration__project", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ProposalRun)
class ProposalRunAdmin(RunAdmin):
    list_display = ["id", "iteration", "model_version", "status", "done", "failed", "proposals",
                    "created_at", "finished_at"]
    list_select_related = ["iteration__project", "model_version"]
    search_fields = ["model_version__name", "error"]


@admin.register(ImportRun)
class ImportRunAdmin(RunAdmin):
    list_display = ["id", "iteration", "source", "status", "imported", "duplicates", "rejected_count",
                    "created_at"]
    list_select_related = ["iteration__project"]
    search_fields = ["source", "error"]


@admin.register(Export)
class ExportAdmin(RunAdmin):
    list_display = ["id", "iteration", "kind", "status", "lines", "uri", "created_by", "created_at"]
    list_filter = ["kind", "status", ("iteration__project", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["iteration__project", "created_by"]
    search_fields = ["uri", "error"]


@admin.register(TrainingRun)
class TrainingRunAdmin(RunAdmin):
    project_path = "project"
    list_display = ["id", "project", "iteration", "kind", "model_version", "status", "created_at"]
    list_filter = ["kind", "status", ("project", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["project", "iteration", "model_version"]
    search_fields = ["message", "error"]


@admin.register(ProposalOutcome)
class ProposalOutcomeAdmin(RunAdmin):
    project_path = "image__iteration__project"
    list_display = ["image", "model_version", "ok", "error_code", "proposals", "created_at"]
    list_filter = ["ok", "error_code", ("model_version", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["image", "model_version"]
    search_fields = ["image__name", "error"]
    raw_id_fields = ["image", "model_version", "run"]
    date_hierarchy = None


@admin.register(GroundTruthJob)
class GroundTruthJobAdmin(RunAdmin):
    list_display = ["name", "iteration", "labels", "status", "created_by", "created_at", "imported_at"]
    list_select_related = ["iteration__project", "created_by"]
    search_fields = ["name", "batch", "failure_reason"]
    raw_id_fields = ["iteration", "service_user", "created_by"]
