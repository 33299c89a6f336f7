"""Proposal runs on the iteration page and model start/stop on the project page (htmx fragments)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user, get_project_for_user
from projects.forms import first_error
from projects.proposals import rekognition
from projects.proposals.forms import StartProposalRunForm
from projects.proposals.panels import (
    MODEL_CONTROLS_TEMPLATE,
    PANEL_TEMPLATE,
    model_controls_context,
    panel_context,
    run_context,
)
from projects.proposals.runs import ProposalRunError
from projects.proposals.tasks import start_proposal_run
from projects.runs import reconcile_soon

PROGRESS_TEMPLATE = "projects/proposal_progress.html"


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
    reconcile_soon()
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


def _units(value):
    """A whole number of inference units from the form, None when left empty."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise rekognition.RekognitionError(
            f"inference units must be whole numbers, not {value!r}") from None


@require_POST
def model_start(request, slug, model_id):
    def start(*, model_version):
        min_units = _units(request.POST.get("min_units"))
        rekognition.start_model(model_version=model_version, min_units=1 if min_units is None else min_units,
                                max_units=_units(request.POST.get("max_units")))

    return _model_action(request, slug, model_id, start, "starting")


@require_POST
def model_stop(request, slug, model_id):
    return _model_action(request, slug, model_id, rekognition.stop_model, "stopping")


@require_POST
def model_refresh(request, slug, model_id):
    return _model_action(request, slug, model_id, rekognition.refresh_model_status, "status refreshed")
