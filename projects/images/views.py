"""Bringing images into an iteration from the browser, and serving their files to members."""

import hashlib

from django.contrib import messages
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_image_for_user, get_iteration_for_user
from projects.aws import s3
from projects.images import importing, tasks
from projects.images.forms import S3ImportForm, UploadImagesForm
from projects.models import ACTIVE_RUN_STATUSES
from projects.runs import reconcile_soon


@require_POST
def iteration_upload(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = UploadImagesForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose one or more JPEG or PNG files to upload.")
        return redirect("projects:iteration", slug=slug, name=name)
    files = [(upload.name, upload) for upload in form.cleaned_data["files"]]
    try:
        run = tasks.start_upload(iteration=iteration, files=files, user=request.user)
    except importing.ImportSourceError as error:
        messages.error(request, str(error))
    else:
        messages.info(request, f"Importing the {run.source} in the background: its progress is shown below.")
    return redirect("projects:iteration", slug=slug, name=name)


@require_POST
def iteration_import_s3(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = S3ImportForm(request.POST, project=iteration.project)
    if not form.is_valid():
        messages.error(request, form.errors["source"][0])
        return redirect("projects:iteration", slug=slug, name=name)
    run = tasks.start_import(iteration=iteration, source=form.cleaned_data["source"], user=request.user)
    messages.info(request, f"Importing {run.source} in the background: its progress is shown below.")
    return redirect("projects:iteration", slug=slug, name=name)


@require_GET
def iteration_import_runs(request, slug, name):
    """The recent imports of an iteration, polled by the page while one is under way."""
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    reconcile_soon()
    return render(request, "projects/_import_runs.html", import_runs_context(iteration))


def import_runs_context(iteration):
    runs = list(iteration.import_runs.order_by("-created_at", "-id")[:3])
    active = any(run.status in ACTIVE_RUN_STATUSES for run in runs)
    return {"project": iteration.project, "iteration": iteration, "import_runs": runs,
            "imports_active": active}


@require_GET
def image_file(request, image_id):
    """The image's bytes for members of its project: a presigned redirect for S3 images."""
    image = get_image_for_user(request.user, image_id)
    if image.in_s3:
        return HttpResponseRedirect(_presigned_image_url(image))
    if not isinstance(default_storage, FileSystemStorage):
        # Loupe's own files are in S3: let the browser fetch them there instead of through a
        # web worker (the storage's URL is presigned and short-lived).
        return HttpResponseRedirect(_cached_url(image.source, lambda: default_storage.url(image.source)))
    if not default_storage.exists(image.source):
        raise Http404("The image file is missing from storage.")
    response = FileResponse(default_storage.open(image.source, "rb"))
    response["Cache-Control"] = "private, max-age=3600"
    return response


PRESIGNED_SECONDS = 900


def _presigned_image_url(image):
    def sign():
        location = s3.parse_s3_uri(image.source)
        try:
            return s3.presigned_url(
                location.bucket, location.key, expires=PRESIGNED_SECONDS,
                region=image.iteration.project.region or None,
            )
        except s3.S3Error as error:
            raise Http404(str(error)) from error

    return _cached_url(image.source, sign)


def _cached_url(source, sign):
    # The same URL for a while lets the browser's cache serve the prefetched next image; it is
    # reused for at most two thirds of its life so it never expires while a page shows it.
    key = "presigned-image:" + hashlib.sha256(source.encode()).hexdigest()
    url = cache.get(key)
    if url is None:
        url = sign()
        cache.set(key, url, PRESIGNED_SECONDS * 2 // 3)
    return url
