"""Proposal runs on the iteration page and model start/stop on the project page (htmx fragments)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from projects import rekognition
from projects.access import get_iteration_for_user, get_project_for_user, role_in
from projects.forms import first_error
from projects.models import ACTIVE_RUN_STATUSES, Membership, ModelVersion
from projects.proposal_forms import StartProposalRunForm
from projects.proposals import ProposalRunError, start_proposal_run

PANEL_TEMPLATE = "projects/proposal_panel.html"
PROGRESS_TEMPLATE = "projects/proposal_progress.html"
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
        "shown_model": iteration.model_version,
        **(run_context(run) if run else {"run": None}),
    }


def _initial(iteration):
    return {"model_version": iteration.model_version_id} if iteration.model_version_id else {}


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


@require_POST
def proposal_run_start(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = StartProposalRunForm(request.POST, project=iteration.project)
    error = ""
    if form.is_valid():
        try:
            run = start_proposal_run(
                iteration=iteration, model_version=form.cleaned_data["model_version"],
                concurrency=form.cleaned_data["concurrency"], user=request.user,
            )
        except ProposalRunError as failure:
            error = str(failure)
        else:
            return _started(request, iteration, run)
    if not request.htmx:
        messages.error(request, error or first_error(form))
        return redirect("projects:iteration", slug=slug, name=name)
    return render(request, PANEL_TEMPLATE, panel_context(request, iteration, form=form, error=error))


def _started(request, iteration, run):
    if not request.htmx:
        messages.success(request, f"Proposal run #{run.pk} of {run.model_version.name} started.")
        return redirect("projects:iteration", slug=iteration.project.slug, name=iteration.name)
    return render(request, PANEL_TEMPLATE, panel_context(request, iteration))


@require_GET
def proposal_run_progress(request, slug, name, run_id):
    iteration = get_iteration_for_user(request.user, slug, name)
    run = get_object_or_404(iteration.proposal_runs.select_related("model_version"), pk=run_id)
    if not request.htmx:
        return redirect("projects:iteration", slug=slug, name=name)
    context = {"project": iteration.project, "iteration": iteration, **run_context(run)}
    return render(request, PROGRESS_TEMPLATE, context)


# --- Rekognition model start/stop --------------------------------------------------------------------


def _model_action(request, slug, model_id, action, done_message):
    project = get_project_for_user(request.user, slug, owner=True)
    model = get_object_or_404(project.model_versions, pk=model_id)
    error = ""
    try:
        action(model_version=model)
    except rekognition.RekognitionError as failure:
        error = str(failure)
    if not request.htmx:
        if error:
            messages.error(request, f"{model.name}: {error}")
        else:
            messages.success(request, f"{model.name}: {done_message} ({model.status}).")
        return redirect("projects:detail", slug=slug)
    context = model_controls_context(model, project=project, is_owner=True, error=error)
    return render(request, MODEL_CONTROLS_TEMPLATE, context)


@require_POST
def model_start(request, slug, model_id):
    return _model_action(request, slug, model_id, rekognition.start_model, "starting")


@require_POST
def model_stop(request, slug, model_id):
    return _model_action(request, slug, model_id, rekognition.stop_model, "stopping")


@require_POST
def model_refresh(request, slug, model_id):
    return _model_action(request, slug, model_id, rekognition.refresh_model_status, "status refreshed")


# Rekognition statuses in which a start or a stop makes sense.
STARTABLE = {"TRAINING_COMPLETED", "STOPPED", "FAILED"}
STOPPABLE = {"RUNNING"}
BILLED = {"STARTING", "RUNNING", "STOPPING"}


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
