from django.contrib import messages
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user, get_project_for_user, role_in
from projects.forms import ProjectSettingsForm
from projects.groundtruth import panels as groundtruth_panels
from projects.images.forms import S3ImportForm, UploadImagesForm
from projects.images.views import import_runs_context
from projects.manifests import panels as manifest_panels
from projects.models import Membership, Project, counts_of
from projects.proposals import panels as proposal_panels
from projects.provisioning import ProjectSetupError, create_iteration
from projects.runs import reconcile_soon
from projects.training import panels as training_panels


@require_GET
def project_list(request):
    projects = (
        Project.objects.visible_to(request.user)
        .distinct()
        .annotate(iteration_count=Count("iterations", distinct=True))
        .order_by("name")
    )
    return render(request, "projects/project_list.html", {"projects": projects})


def project_settings(request, slug):
    project = get_project_for_user(request.user, slug, owner=True)
    form = ProjectSettingsForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Project settings saved.")
        return redirect("projects:detail", slug=project.slug)
    return render(request, "projects/project_settings.html", {"project": project, "form": form})


@require_POST
def iteration_create(request, slug):
    project = get_project_for_user(request.user, slug, owner=True)
    try:
        iteration = create_iteration(project=project, name=request.POST.get("name", ""))
    except ProjectSetupError as error:
        messages.error(request, str(error))
        return redirect("projects:detail", slug=project.slug)
    return redirect("projects:iteration", slug=project.slug, name=iteration.name)


@require_GET
def iteration_detail(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name)
    # The page shows and polls runs: none of them may be a dead worker's "running".
    reconcile_soon()
    counts = counts_of(iteration)
    is_owner = role_in(request.user, iteration.project) == Membership.Role.OWNER
    context = {
        "project": iteration.project,
        "iteration": iteration,
        "counts": counts,
        "is_owner": is_owner,
        "upload_form": UploadImagesForm(),
        "s3_form": S3ImportForm(project=iteration.project),
        "proposal_panel": proposal_panels.render_panel(request, iteration, is_owner=is_owner),
        "training_panel": training_panels.render_panel(request, iteration, is_owner=is_owner),
        "groundtruth_panel": groundtruth_panels.render_panel(request, iteration, is_owner=is_owner),
        **(import_runs_context(iteration) if is_owner else {}),
        **manifest_panels.manifest_context(iteration),
    }
    return render(request, "projects/iteration_detail.html", context)
