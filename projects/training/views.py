"""Training the next model version from the iteration page (htmx fragments, redirects without htmx)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user
from projects.forms import first_error
from projects.runs import reconcile_soon
from projects.training.forms import TrainForm
from projects.training.panels import PANEL_TEMPLATE, STATUS_TEMPLATE, panel_context, status_context
from projects.training.service import TrainingError
from projects.training.tasks import start_training


@require_POST
def training_start(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = TrainForm(request.POST, iteration=iteration)
    error = ""
    if form.is_valid():
        try:
            run = start_training(form.training_request(), user=request.user)
        except TrainingError as failure:
            error = str(failure)
        else:
            return _started(request, iteration, run)
    if not request.htmx:
        messages.error(request, error or first_error(form))
        return redirect("projects:iteration", slug=slug, name=name)
    context = panel_context(request, iteration, form=form, error=error, is_owner=True)
    return render(request, PANEL_TEMPLATE, context)


def _started(request, iteration, run):
    if not request.htmx:
        messages.success(request, f"Training started: {run.message}.")
        return redirect("projects:iteration", slug=iteration.project.slug, name=iteration.name)
    return render(request, PANEL_TEMPLATE, panel_context(request, iteration, is_owner=True))


@require_GET
def training_status(request, slug, name, run_id):
    iteration = get_iteration_for_user(request.user, slug, name)
    reconcile_soon()
    run = get_object_or_404(iteration.training_runs.select_related("model_version"), pk=run_id)
    if not request.htmx:
        return redirect("projects:iteration", slug=slug, name=name)
    context = {"project": iteration.project, "iteration": iteration, **status_context(run)}
    return render(request, STATUS_TEMPLATE, context)
