"""The iteration page's manifest section: check, download, publish to S3, follow a publish."""


from django.contrib import messages
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user, role_in
from projects.manifests.checks import ValidationReport
from projects.manifests.downloads import check_download, download
from projects.manifests.export import CONTENT_TYPE, ManifestError, manifest_filename
from projects.manifests.forms import ManifestOptionsForm
from projects.manifests.publish import ManifestRefused
from projects.manifests.tasks import start_publish
from projects.models import Membership, RunStatus
from projects.runs import reconcile_soon

REPORT_TEMPLATE = "projects/manifest_report.html"
EXPORT_TEMPLATE = "projects/manifest_export.html"


def _context(request, iteration, **extra):
    return {
        "project": iteration.project,
        "iteration": iteration,
        "is_owner": role_in(request.user, iteration.project) == Membership.Role.OWNER,
        **extra,
    }


def _render_report(request, iteration, form, *, report=None, error="", status=200):
    context = _context(request, iteration, form=form, report=report, error=error)
    template = REPORT_TEMPLATE + "#report" if request.htmx else REPORT_TEMPLATE
    return render(request, template, context, status=status)


@require_GET
def manifest_check(request, slug, name):
    """The validation report of the export the options describe, shown before any download.

    The file it validated is kept, so the download that follows sends it without exporting again.
    """
    iteration = get_iteration_for_user(request.user, slug, name)
    form = ManifestOptionsForm(request.GET)
    if not form.is_valid():
        return _render_report(request, iteration, form, status=400)
    try:
        report = check_download(iteration=iteration, **form.export_options())
    except ManifestError as error:
        return _render_report(request, iteration, form, error=str(error), status=409)
    return _render_report(request, iteration, form, report=report)


@require_POST
def manifest_download(request, slug, name):
    """Send the checked manifest as a file; a manifest Rekognition would refuse is not sent.

    A POST: a download is recorded as an Export, and a GET (a prefetch, a crawler, a reload of
    a link) must not write. The file sent is the one validated: the file the check kept, when the
    iteration has not changed since, or else one written now; the response streams it and closes it.
    """
    iteration = get_iteration_for_user(request.user, slug, name)
    form = ManifestOptionsForm(request.POST)
    if not form.is_valid():
        return _render_report(request, iteration, form, status=400)
    try:
        _export, file = download(iteration=iteration, user=request.user, **form.export_options())
    except ManifestRefused as error:
        return _render_report(request, iteration, form, report=error.report, error=str(error), status=409)
    except ManifestError as error:
        return _render_report(request, iteration, form, error=str(error), status=409)
    response = FileResponse(file, as_attachment=True, filename=manifest_filename(iteration),
                            content_type=f"{CONTENT_TYPE}; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def manifest_publish(request, slug, name):
    """Owners queue a publish to the project's output location and watch it finish."""
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = ManifestOptionsForm(request.POST)
    if not form.is_valid():
        return _render_report(request, iteration, form, status=400)
    try:
        export = start_publish(
            iteration=iteration, user=request.user, test_fraction=form.cleaned_data["test_fraction"],
            **form.export_options(),
        )
    except ManifestError as error:
        if not request.htmx:
            messages.error(request, str(error))
            return redirect("projects:iteration", slug=slug, name=name)
        return _render_report(request, iteration, form, error=str(error), status=409)
    if not request.htmx:
        return redirect("projects:manifest-export", slug=slug, name=name, export_id=export.pk)
    return render(request, EXPORT_TEMPLATE + "#export", _export_context(request, iteration, export))


@require_GET
def manifest_export(request, slug, name, export_id):
    """One export's status and outcome; htmx polls it while the publish runs."""
    iteration = get_iteration_for_user(request.user, slug, name)
    reconcile_soon()
    export = get_object_or_404(iteration.exports.all(), pk=export_id)
    template = EXPORT_TEMPLATE + "#export" if request.htmx else EXPORT_TEMPLATE
    return render(request, template, _export_context(request, iteration, export))


def _export_context(request, iteration, export):
    files = (export.report or {}).get("files") or []
    validation = (export.report or {}).get("validation")
    return _context(
        request, iteration, export=export, files=files,
        report=ValidationReport.from_dict(validation) if validation else None,
        running=export.status in (RunStatus.QUEUED, RunStatus.RUNNING),
    )
