"""The local-model training section of the iteration page: its query and its fragment."""

from django.template.loader import render_to_string

from projects.access import role_in
from projects.local_model.forms import TrainLocalModelForm
from projects.models import ACTIVE_RUN_STATUSES, Membership

PANEL_TEMPLATE = "projects/training_panel.html"


def panel_context(request, iteration, *, form=None, error="", is_owner=None):
    if is_owner is None:
        is_owner = role_in(request.user, iteration.project) == Membership.Role.OWNER
    run = iteration.training_runs.select_related("model_version").first()
    return {
        "project": iteration.project,
        "iteration": iteration,
        "is_owner": is_owner,
        "form": (form or TrainLocalModelForm(iteration=iteration)) if is_owner else None,
        "error": error,
        **status_context(run),
    }


def status_context(run):
    return {"run": run, "active": bool(run and run.status in ACTIVE_RUN_STATUSES)}


def render_panel(request, iteration, *, is_owner):
    return render_to_string(PANEL_TEMPLATE, panel_context(request, iteration, is_owner=is_owner), request)
