"""The proposals section of the iteration page and the model controls of the project page: the
queries behind them, and the fragments the page views embed and the htmx views return."""

from django.template.loader import render_to_string
from django.utils import timezone

from projects.access import role_in
from projects.models import ACTIVE_RUN_STATUSES, Membership, ModelVersion
from projects.proposals.forms import StartProposalRunForm

PANEL_TEMPLATE = "projects/proposal_panel.html"
MODEL_CONTROLS_TEMPLATE = "projects/_model_controls.html"
SHOWN_FAILURES = 10


def panel_context(request, iteration, *, form=None, error="", is_owner=None):
    project = iteration.project
    run = iteration.proposal_runs.select_related("model_version").first()
    if is_owner is None:
        is_owner = role_in(request.user, project) == Membership.Role.OWNER
    return {
        "project": project,
        "iteration": iteration,
        "is_owner": is_owner,
        "form": form or StartProposalRunForm(project=project, initial=_initial(iteration)),
        "error": error,
        "shown_model": iteration.shown_model,
        **(run_context(run) if run else {"run": None}),
    }


def _initial(iteration):
    return {"model_version": iteration.shown_model_id} if iteration.shown_model_id else {}


def run_context(run):
    """What the progress fragment shows about a run: counts, time, the first failed images."""
    processed = run.done + run.failed
    failures = run.outcomes.filter(ok=False).select_related("image").order_by("image__position", "id")
    end = run.finished_at or timezone.now()
    active = run.status in ACTIVE_RUN_STATUSES
    return {
        "run": run,
        "active": active,
        "processed": processed,
        # A queued run has not counted its images yet (total 0): it is at 0%, not done.
        "percent": min(100, int(100 * processed / run.total)) if run.total else (0 if active else 100),
        "seconds": (end - run.started_at).total_seconds() if run.started_at else None,
        "failures": list(failures[:SHOWN_FAILURES]),
        "more_failures": max(run.failed - SHOWN_FAILURES, 0),
        "skipped_labels": run.outcomes.filter(ok=True).exclude(error="").count(),
    }


# Rekognition statuses in which a start or a stop makes sense.
Status = ModelVersion.Status
STARTABLE = {Status.TRAINING_COMPLETED, Status.COPYING_COMPLETED, Status.STOPPED, Status.FAILED}
STOPPABLE = {Status.RUNNING}
BILLED = {Status.STARTING, Status.RUNNING, Status.STOPPING}


def model_controls_context(model, *, project, is_owner, error=""):
    return {
        "project": project,
        "model": model,
        "is_owner": is_owner,
        "error": error,
        "controllable": model.kind == ModelVersion.Kind.REKOGNITION and bool(model.arn),
        "can_start": model.status in STARTABLE,
        "can_stop": model.status in STOPPABLE,
        "billed": model.status in BILLED,
    }


def render_panel(request, iteration, *, is_owner):
    return render_to_string(PANEL_TEMPLATE, panel_context(request, iteration, is_owner=is_owner), request)


def render_model_controls(request, model, *, project, is_owner):
    context = model_controls_context(model, project=project, is_owner=is_owner)
    return render_to_string(MODEL_CONTROLS_TEMPLATE, context, request)
