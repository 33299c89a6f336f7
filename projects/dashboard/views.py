from django.shortcuts import render
from django.views.decorators.http import require_GET

from projects.access import get_project_for_user, role_in
from projects.dashboard import panels
from projects.dashboard.tasks import schedule_refresh
from projects.models import Membership
from projects.proposals import panels as proposal_panels


@require_GET
def project_detail(request, slug):
    """The project page: the dashboard for owners, the iterations to review for reviewers."""
    project = get_project_for_user(request.user, slug)
    is_owner = role_in(request.user, project) == Membership.Role.OWNER
    models = list(project.model_versions.order_by("created_at", "id"))
    context = {"project": project, "is_owner": is_owner, "model_rows": [
        (model, proposal_panels.render_model_controls(request, model, project=project, is_owner=is_owner))
        for model in reversed(models)
    ]}
    if not is_owner:
        context.update(iterations=panels.annotated_iterations(project), labels=project.labels.all())
        return render(request, "projects/project_detail.html", context)
    context.update(panels.dashboard(project, models=models, selected_name=request.GET.get("iteration"),
                                    schedule=schedule_refresh))
    return render(request, "projects/dashboard.html", context)
