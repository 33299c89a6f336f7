"""A manifest download from the iteration page: checked first, then sent, for the price of one export.

The check writes the manifest once while validating it and keeps the file in storage under a name
that says which state of the iteration it was written from (`manifest_state`); the download that
follows streams that file when the state is still the same, and exports again otherwise. What is
sent is always a file that was validated as a whole and describes the iteration as it is now.
"""

import hashlib
import io
import json
from datetime import timedelta

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from projects import runs as lifecycle
from projects.manifests.export import manifest_filename
from projects.manifests.publish import (
    export_options,
    prepare_download,
    start_export,
    write_temporary_manifest,
)
from projects.models import Export, Image, Proposal, RunStatus

# Bumped whenever the exporter writes different lines for the same data: older checked files
# then no longer match any state.
FORMAT = "1"
FOLDER = "manifests/checked"
# A checked file is trusted for this long at most: the state below sees every review, import and
# setting, but not an administrator editing a box in place through the admin site.
MAX_AGE = timedelta(hours=1)


def manifest_state(iteration, options):
    """A digest of everything the manifest's bytes depend on, read in a few aggregate queries.

    Every review, reopen-and-save, Ground Truth result or manifest import bumps its image's version
    (so the sum of versions moves); imports and deletions move the image count or the newest id
    (ids are never reused); labels, thresholds, the shown model and the project's settings are read
    directly; with unreviewed images, the shown model's proposals too.
    """
    project = iteration.project
    images = Image.objects.filter(iteration=iteration).order_by().aggregate(
        count=Count("id"), newest=Max("id"), versions=Sum("version"), last=Max("reviewed_at"),
        reviewed=Count("id", filter=Q(status=Image.Status.REVIEWED)),
    )
    labels = list(project.labels.order_by("order", "name", "id").values_list("id", "name"))
    facts = {
        "format": FORMAT, "options": options, "iteration": [iteration.pk, iteration.name],
        "project": [project.slug, project.region, project.published_images_uri],
        "images": [images["count"], images["newest"], images["versions"], images["reviewed"],
                   images["last"].isoformat() if images["last"] else None],
        "labels": labels,
    }
    model = iteration.shown_model if options["include_unreviewed"] else None
    if model is not None:
        proposals = Proposal.objects.filter(model_version=model).order_by().aggregate(
            count=Count("id"), newest=Max("id"))
        facts["model"] = [model.pk, sorted(model.thresholds_by_label([pk for pk, _ in labels]).items()),
                          proposals["count"], proposals["newest"]]
    text = json.dumps(facts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _names(iteration, state):
    base = f"{FOLDER}/{iteration.pk}/{state}"
    return base + ".manifest", base + ".json"


def check_download(*, iteration, include_unreviewed=False, include_empty=True):
    """The validation report of what a download would contain; an acceptable manifest is kept for
    the download that usually follows."""
    options = export_options(include_unreviewed, include_empty)
    state = manifest_state(iteration, options)
    handle, result = write_temporary_manifest(iteration=iteration, options=options)
    with handle:
        if result.report.ok:
            _keep(iteration, state, handle, result)
    return result.report


def _keep(iteration, state, handle, result):
    manifest, facts = _names(iteration, state)
    _forget_others(iteration, keep={manifest, facts})
    if default_storage.exists(facts):
        return  # another check of the same state got there first
    saved = default_storage.save(manifest, File(handle))
    if saved != manifest:  # a half-written twin from a concurrent check: leave it to that check
        default_storage.delete(saved)
        return
    # Written last: its presence says the manifest beside it is complete.
    body = json.dumps({"lines": result.lines, "report": result.report.as_dict()}).encode()
    default_storage.save(facts, File(io.BytesIO(body)))


def _forget_others(iteration, keep):
    folder = f"{FOLDER}/{iteration.pk}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        path = f"{folder}/{name}"
        if path not in keep:
            default_storage.delete(path)


def _checked(iteration, state):
    """(facts, open file) of the checked manifest of this state, or None."""
    manifest, facts = _names(iteration, state)
    try:
        if timezone.now() - default_storage.get_modified_time(facts) > MAX_AGE:
            return None
        with default_storage.open(facts, "rb") as stored:
            found = json.load(stored)
        return found, default_storage.open(manifest, "rb")
    except (FileNotFoundError, ValueError):
        return None


def download(*, iteration, include_unreviewed=False, include_empty=True, user=None):
    """The manifest to send, as (export, a binary file at its start), recorded as an Export.

    The file checked for the iteration's current state when there is one, else the manifest
    written now (publish.prepare_download). Raises ManifestRefused when Rekognition would refuse
    the manifest, ManifestError when it cannot be built.
    """
    options = export_options(include_unreviewed, include_empty)
    checked = _checked(iteration, manifest_state(iteration, options))
    if checked is None:
        return prepare_download(iteration=iteration, user=user, **options)
    facts, handle = checked
    export = start_export(iteration, Export.Kind.DOWNLOAD, options, user)
    lifecycle.finish(export, RunStatus.SUCCEEDED, lines=facts["lines"], uri=manifest_filename(iteration),
                     report={"validation": facts["report"]})
    return export, handle
