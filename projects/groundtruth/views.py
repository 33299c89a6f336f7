"""Dispatching to Ground Truth, following and stopping its jobs from the iteration page (owners)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from projects.access import get_iteration_for_user
from projects.forms import first_error
from projects.groundtruth import results
from projects.groundtruth.dispatch import DispatchError, cors_instructions, dispatch
from projects.groundtruth.forms import DispatchForm
from projects.groundtruth.panels import PANEL_TEMPLATE, panel_context
from projects.groundtruth.tasks import follow


def _back(slug, name):
    return redirect("projects:iteration", slug=slug, name=name)


@require_POST
def groundtruth_dispatch(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = DispatchForm(request.POST)
    error, plan = "", None
    if form.is_valid():
        try:
            plan = dispatch(form.dispatch_request(iteration, request.user))
        except DispatchError as failure:
            error = str(failure)
        else:
            if plan.cors_missing:
                error = cors_instructions(plan.cors_missing)
            if not form.cleaned_data["dry_run"]:
                follow(plan.created)
                if not request.htmx:
                    messages.success(
                        request, f"Sent {plan.images} images to Ground Truth in {len(plan.created)} job(s)."
                    )
                    return _back(slug, name)
                plan = None
    if not request.htmx:
        if plan is not None:
            messages.info(
                request, f"Dry run: {len(plan.jobs)} job(s) for {plan.images} images; nothing sent."
            )
        if error or not form.is_valid():
            messages.error(request, error or first_error(form))
        return _back(slug, name)
    context = panel_context(request, iteration, form=form, error=error, plan=plan, is_owner=True)
    return render(request, PANEL_TEMPLATE, context)


@require_POST
def groundtruth_stop(request, slug, name, job_id):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    job = get_object_or_404(iteration.groundtruth_jobs, pk=job_id)
    try:
        results.stop(job)
    except results.GroundTruthError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Stopping {job.name}: its results so far are imported once it has stopped."
        )
    return _back(slug, name)


@require_POST
def groundtruth_sync(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    for job in results.jobs_to_follow(iteration):
        try:
            results.sync(job)
        except results.GroundTruthError as error:
            messages.error(request, str(error))
    return _back(slug, name)
