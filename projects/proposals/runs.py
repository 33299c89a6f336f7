"""Proposal runs: a model version over an iteration's images, with what it said about each.

A run is resumable: an image's proposals and its ProposalOutcome are written in one transaction, so
a run killed at any point leaves each image either fully done or untouched, and the next run skips
the images already done for that model version.
"""

import logging
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from django.db import IntegrityError, connections, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from projects import runs as lifecycle
from projects.detections import (
    MAX_CONCURRENCY,
    NOT_RUNNING_MESSAGE,
    ImageProposalError,
    InvalidDetection,
    ModelNotReady,
    check_detection,
    uncertainty_score,
)
from projects.models import (
    Image,
    ModelVersion,
    Proposal,
    ProposalOutcome,
    ProposalRun,
    RunStatus,
)
from projects.proposals.backends import backend_for

logger = logging.getLogger("loupe.proposals")

DEFAULT_BATCH_SIZE = 100
UNKNOWN_LABELS = "UnknownLabels"
# The fields of a ProposalRun that change while it exists.
RUN_STATE = (
    "status", "error", "task_id", "started_at", "finished_at", "heartbeat_at", "total", "done",
    "failed", "proposals",
)
class ProposalRunError(Exception):
    """A run cannot be started as asked; the message says what to do."""


# --- storing what a model said about one image ---------------------------------------------------


@dataclass(frozen=True)
class StoredOutcome:
    proposals: int
    skipped_labels: tuple[str, ...]  # label names not in the project, skipped


def store_detections(*, image, model_version, detections, run=None, labels=None):
    """Replace the image's proposals from this model version and record its outcome, atomically.

    Detections of labels the project does not have are skipped and named on the outcome: creating
    labels behind the owner's back would change hotkeys and the manifest's class map.
    `labels` ({name: LabelClass}) saves a query per image when the caller already has them.
    """
    if labels is None:
        labels = {label.name: label for label in image.iteration.project.labels.all()}
    rows, scored, skipped = [], [], []
    for detection in detections:
        check_detection(detection)
        label = labels.get(detection.label)
        if label is None:
            skipped.append(detection.label)
            continue
        left, top, width, height = detection.box if detection.box is not None else (None,) * 4
        rows.append(Proposal(
            image=image, model_version=model_version, label=label, left=left, top=top,
            width=width, height=height, confidence=detection.confidence,
        ))
        scored.append((detection.confidence, model_version.threshold_for(label.pk)))
    unknown = tuple(sorted(set(skipped)))
    note = (
        f"skipped {len(skipped)} detection(s) of labels not in the project: {', '.join(unknown)}"
        if skipped else ""
    )
    with transaction.atomic():
        Proposal.objects.filter(image=image, model_version=model_version).delete()
        ProposalOutcome.objects.filter(image=image, model_version=model_version).delete()
        Proposal.objects.bulk_create(rows)
        image.priority = uncertainty_score(scored)
        Image.objects.filter(pk=image.pk).update(priority=image.priority)
        ProposalOutcome.objects.create(
            image=image, model_version=model_version, run=run, ok=True, proposals=len(rows),
            error_code=UNKNOWN_LABELS if skipped else "", error=note,
        )
    return StoredOutcome(len(rows), unknown)


def store_failure(*, image, model_version, code, message, run=None):
    """Record why this image has no proposals; earlier proposals from this model are kept."""
    with transaction.atomic():
        ProposalOutcome.objects.filter(image=image, model_version=model_version).delete()
        ProposalOutcome.objects.create(
            image=image, model_version=model_version, run=run, ok=False,
            error_code=code[:64], error=message,
        )


# --- runs -------------------------------------------------------------------------------------------


def create_proposal_run(*, iteration, model_version, concurrency, user=None):
    """A queued run; earlier unfinished runs of the same model here are marked superseded.

    Superseding (rather than refusing) is what lets an owner restart after a worker was killed:
    the old run's row would otherwise say "running" forever. A live old run notices at its next
    batch and stops, and the atomic per-image writes keep the two from duplicating anything.
    The iteration keeps showing its current model until the run has stored something (see
    _show_model), and the run counts its images when it starts (see _begin).
    """
    _check_run_request(iteration=iteration, model_version=model_version, concurrency=concurrency)
    with transaction.atomic():
        run = ProposalRun.objects.create(
            iteration=iteration, model_version=model_version, concurrency=concurrency, created_by=user,
        )
        ProposalRun.objects.filter(
            iteration=iteration, model_version=model_version,
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        ).exclude(pk=run.pk).update(
            status=RunStatus.STOPPED, error=f"superseded by run #{run.pk}", finished_at=timezone.now()
        )
    return run


def _check_run_request(*, iteration, model_version, concurrency):
    if model_version.project_id != iteration.project_id:
        raise ProposalRunError(
            f"model version {model_version.name!r} belongs to another project than {iteration}"
        )
    if model_version.kind == ModelVersion.Kind.IMPORTED:
        raise ProposalRunError(
            f"model version {model_version.name!r} holds imported predictions and cannot run: "
            "pick a Rekognition or offline model"
        )
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ProposalRunError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")


def run_proposals(*, run, backend=None, batch_size=DEFAULT_BATCH_SIZE, progress=None):
    """Propose on every image of the run's iteration not yet done by its model version.

    Backend calls go through a pool of run.concurrency threads; every database write stays on this
    thread, so threads never hold connections. Returns the run with its final status.
    """
    # The state only: a run's iteration and model never change, and keeping the caller's iteration
    # instance lets the caller see it switch to this model (see _show_model).
    run.refresh_from_db(fields=RUN_STATE)
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return run
    # Any failure is recorded so the page says why (without it the row would say "queued" or
    # "running" forever while the task has failed); a kill (KeyboardInterrupt/SystemExit) leaves
    # the row "running" so the next run can resume.
    with lifecycle.failing(run):
        try:
            backend = backend or backend_for(run.model_version)
        except ModelNotReady as error:
            return lifecycle.finish(run, RunStatus.STOPPED, error=str(error))
        _begin(run)
        try:
            status, error = _process(run, backend, batch_size, progress)
        except Exception:
            _save_counts(run)
            raise
    _save_counts(run)
    if progress:
        progress(run.done + run.failed, run.total)
    if status == RunStatus.SUCCEEDED and (run.done or not run.total):
        # Nothing new was stored (every image was done before, or the iteration is empty), yet the
        # model has proposed on all of it: show it. A run whose every image failed shows nothing.
        _show_model(run)
    return lifecycle.finish(run, status, error=error)


def _begin(run):
    # Counted here, not when the run is queued: images imported in between are proposed on too.
    done = ProposalOutcome.objects.filter(
        model_version=run.model_version_id, ok=True, image__iteration=run.iteration_id
    )
    lifecycle.begin(
        run,
        total=Image.objects.filter(iteration=run.iteration_id).count(),
        done=done.count(),
        proposals=done.aggregate(total=Sum("proposals"))["total"] or 0,
        failed=ProposalOutcome.objects.filter(run=run, ok=False).count(),
    )


def _pending_ids(run):
    """Images without a successful outcome, minus those this very run already failed on."""
    done = ProposalOutcome.objects.filter(model_version=run.model_version_id).filter(
        _ok_or_this_run(run)
    ).values("image_id")
    return list(
        Image.objects.filter(iteration=run.iteration_id)
        .exclude(pk__in=done)
        .order_by("position", "id")
        .values_list("id", flat=True)
    )


def _ok_or_this_run(run):
    return Q(ok=True) | Q(run=run)


def _process(run, backend, batch_size, progress):
    ids = _pending_ids(run)
    labels = {label.name: label for label in run.iteration.project.labels.all()}
    model_version = run.model_version
    window = max(run.concurrency * 2, 1)
    stop = None
    with ThreadPoolExecutor(max_workers=run.concurrency, thread_name_prefix="proposals") as pool:
        # A window of twice the workers keeps every worker busy without loading the whole
        # iteration's images into futures up front.
        in_flight = {}
        for chunk in _chunks(ids, batch_size):
            for image in _load(chunk):
                while len(in_flight) >= window:
                    stop = _collect(run, in_flight, labels, model_version) or stop
                if stop:
                    break
                in_flight[pool.submit(_detect, backend, image)] = image
            if stop:
                break
            _save_counts(run)
            if progress:
                progress(run.done + run.failed, run.total)
            if _superseded(run):
                stop = (RunStatus.STOPPED, "superseded by a newer run of this model")
                break
        while in_flight:
            stop = _collect(run, in_flight, labels, model_version) or stop
    return stop or (RunStatus.SUCCEEDED, "")


def _chunks(ids, size):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _load(ids):
    images = Image.objects.select_related("iteration__project").in_bulk(ids)
    return [images[pk] for pk in ids if pk in images]


def _detect(backend, image):
    try:
        return backend.detect(image)
    finally:
        # A backend that touched the database from this worker thread must not leak its connection.
        connections.close_all()


def _collect(run, in_flight, labels, model_version):
    """Write the results of finished calls; returns (status, message) when the run must stop."""
    finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
    stop = None
    # One commit for all the calls that finished together: each image is still written whole
    # (its own savepoint), and a commit per image was most of Loupe's own time per image.
    counts = (run.done, run.failed, run.proposals)
    try:
        with transaction.atomic():
            for future in finished:
                stop = _write_result(run, in_flight.pop(future), future, labels, model_version) or stop
            if run.done > counts[0]:
                _show_model(run)
    except BaseException:
        # The group was rolled back: so are its counts.
        run.done, run.failed, run.proposals = counts
        raise
    # Here, not per batch: with a slow or throttled model a batch can outlast the stale interval.
    lifecycle.heartbeat(run)
    if stop:
        for future in in_flight:
            future.cancel()
    return stop


def _write_result(run, image, future, labels, model_version):
    if future.cancelled():
        return None
    try:
        detections = future.result()
    except ModelNotReady as error:
        return (RunStatus.STOPPED, str(error) or NOT_RUNNING_MESSAGE)
    except ImageProposalError as error:
        _record_failure(run, image, model_version, error.code, error.message)
        return None
    except Exception as error:
        # A bug in a backend must not cost the rest of the images; the code names it.
        logger.exception("proposal backend failed on image %s", image.pk)
        _record_failure(run, image, model_version, type(error).__name__, str(error))
        return None
    _record_success(run, image, model_version, detections, labels)
    return None


def _record_success(run, image, model_version, detections, labels):
    try:
        stored = store_detections(
            image=image, model_version=model_version, detections=detections, run=run, labels=labels
        )
    except InvalidDetection as error:
        _record_failure(run, image, model_version, "InvalidDetection", str(error))
        return
    except IntegrityError:
        # Another run wrote this image's outcome first: it is done, with its proposals only.
        return
    run.done += 1
    run.proposals += stored.proposals


def _record_failure(run, image, model_version, code, message):
    store_failure(image=image, model_version=model_version, code=code, message=message, run=run)
    run.failed += 1


def _show_model(run):
    """Point the iteration's reviewers at this run's model, once it has stored proposals to show.

    Not before: a run that stops at once (model not running, access denied) must leave reviewers
    the previous model's proposals. Committed with the first stored images, so a kill right after
    cannot leave them stored but hidden. The iteration is held in memory: one write per run.
    """
    iteration = run.iteration
    if iteration.shown_model_id != run.model_version_id:
        iteration.shown_model = run.model_version
        iteration.save(update_fields=["shown_model"])


def _save_counts(run):
    ProposalRun.objects.filter(pk=run.pk).update(
        done=run.done, failed=run.failed, proposals=run.proposals
    )


def _superseded(run):
    return ProposalRun.objects.filter(pk=run.pk).values_list("status", flat=True).first() != (
        RunStatus.RUNNING
    )
