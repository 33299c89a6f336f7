"""The training section of the iteration page: its query and its fragment."""

from django.template.loader import render_to_string

from projects.access import role_in
from projects.models import ACTIVE_RUN_STATUSES, Membership, ModelVersion
from projects.training.forms import TrainForm

PANEL_TEMPLATE = "projects/training_panel.html"
STATUS_TEMPLATE = "projects/training_status.html"


def panel_context(request, iteration, *, form=None, error="", is_owner=None):
    if is_owner is None:
        is_owner = role_in(request.user, iteration.project) == Membership.Role.OWNER
    run = iteration.training_runs.select_related("model_version").first()
    return {
        "project": iteration.project,
        "iteration": iteration,
        "is_owner": is_owner,
        "form": (form or TrainForm(iteration=iteration)) if is_owner else None,
        "error": error,
        **status_context(run),
    }


def status_context(run):
    active = bool(run and run.status in ACTIVE_RUN_STATUSES)
    rekognition = bool(run and run.kind == ModelVersion.Kind.REKOGNITION)
    details = run.details if rekognition else {}
    return {
        "run": run,
        "active": active,
        "rekognition": rekognition,
        # Rekognition trains for an hour or more: no need to ask every two seconds.
        "poll_every": "10s" if rekognition else "2s",
        "phase": details.get("phase", ""),
        "problems": details.get("problems", []),
        "problems_dropped": details.get("problems_dropped", 0),
        "manifest_errors": details.get("manifest_errors", []),
        "notes": details.get("notes", []),
    }


def render_panel(request, iteration, *, is_owner):
    return render_to_string(PANEL_TEMPLATE, panel_context(request, iteration, is_owner=is_owner), request)
