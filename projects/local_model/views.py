"""Training a local model from the iteration page (htmx fragments, redirects without htmx)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user
from projects.forms import first_error
from projects.local_model.forms import TrainLocalModelForm
from projects.local_model.panels import PANEL_TEMPLATE, panel_context, status_context
from projects.local_model.tasks import start_local_training
from projects.local_model.training import TrainingError
from projects.runs import reconcile_soon

STATUS_TEMPLATE = "projects/training_status.html"


@require_POST
def training_start(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = TrainLocalModelForm(request.POST, iteration=iteration)
    error = ""
    if form.is_valid():
        try:
            run = start_local_training(
                project=iteration.project, iterations=form.training_iterations(),
                name=form.cleaned_data["name"], held_out=form.cleaned_data["held_out"], user=request.user,
            )
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
