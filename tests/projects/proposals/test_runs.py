import threading

import pytest

from projects.detections import NOT_RUNNING_MESSAGE, Detection, ImageProposalError, ModelNotReady
from projects.models import ModelVersion, Proposal, ProposalOutcome, ProposalRun, RunStatus
from projects.proposals.backends import backend_for
from projects.proposals.runs import (
    ProposalRunError,
    create_proposal_run,
    run_proposals,
    store_detections,
    uncertainty_score,
)
from projects.proposals.tasks import start_proposal_run
from tests.factories import make_image, make_iteration, make_model_version, make_project, thresholds

pytestmark = pytest.mark.django_db


class FakeBackend:
    """Answers from a dict keyed by image name; raises what it is told to."""

    def __init__(self, answers=None, *, default=(), raise_for=None):
        self.answers = answers or {}
        self.default = list(default)
        self.raise_for = raise_for or {}
        self.calls = []
        self._lock = threading.Lock()

    def detect(self, image):
        with self._lock:
            self.calls.append(image.name)
        if image.name in self.raise_for:
            raise self.raise_for[image.name]
        return list(self.answers.get(image.name, self.default))


BOX = Detection("aws-logo", 80.0, (10.0, 20.0, 30.0, 40.0))


@pytest.fixture
def setup():
    project = make_project("logos")
    iteration = make_iteration(project, "v2")
    images = [make_image(iteration, source=f"s3://b/v2/img-{n}.jpg", position=n) for n in range(5)]
    model = make_model_version(
        project, "rk-1", kind=ModelVersion.Kind.REKOGNITION, arn="arn:x",
        thresholds=thresholds(project, {"aws-logo": 70.0}),
    )
    return iteration, images, model


def _run(iteration, model, concurrency=2):
    return create_proposal_run(iteration=iteration, model_version=model, concurrency=concurrency)


def test_run_stores_proposals_outcomes_counts_and_priority(setup):
    iteration, images, model = setup
    backend = FakeBackend(
        {"img-0.jpg": [BOX, Detection("smile-logo", 12.5, None)]}, default=[BOX]
    )
    run = run_proposals(run=_run(iteration, model), backend=backend, batch_size=2)
    assert (run.status, run.total, run.done, run.failed, run.proposals, run.error) == (
        RunStatus.SUCCEEDED, 5, 5, 0, 6, ""
    )
    assert run.started_at <= run.finished_at
    assert sorted(backend.calls) == [f"img-{n}.jpg" for n in range(5)]
    first = list(
        Proposal.objects.filter(image=images[0]).order_by("id")
        .values_list("label__name", "left", "top", "width", "height", "confidence")
    )
    assert first == [
        ("aws-logo", 10.0, 20.0, 30.0, 40.0, 80.0),
        ("smile-logo", None, None, None, None, 12.5),
    ]
    images[0].refresh_from_db()
    # aws-logo at 80 is 10 from its threshold 70 (borderline); smile-logo at 12.5 is 37.5 from the
    # default 50: one borderline box plus 1 - 10/100.
    assert images[0].priority == 1.9
    assert ProposalOutcome.objects.filter(model_version=model, ok=True).count() == 5
    iteration.refresh_from_db()
    assert iteration.shown_model == model


def test_per_image_errors_are_recorded_and_the_run_goes_on(setup):
    iteration, images, model = setup
    backend = FakeBackend(default=[BOX], raise_for={
        "img-1.jpg": ImageProposalError("InvalidImageFormatException", "Request has invalid image format"),
        "img-3.jpg": KeyError("boom"),
    })
    run = run_proposals(run=_run(iteration, model), backend=backend)
    assert (run.status, run.done, run.failed, run.proposals) == (RunStatus.SUCCEEDED, 3, 2, 3)
    failures = list(
        ProposalOutcome.objects.filter(ok=False).order_by("image__position")
        .values_list("image__name", "error_code", "error")
    )
    assert failures == [
        ("img-1.jpg", "InvalidImageFormatException", "Request has invalid image format"),
        ("img-3.jpg", "KeyError", "'boom'"),
    ]


def test_model_not_ready_stops_the_run_without_failing_images(setup):
    iteration, images, model = setup
    backend = FakeBackend(default=[BOX], raise_for={
        image.name: ModelNotReady(NOT_RUNNING_MESSAGE) for image in images
    })
    run = run_proposals(run=_run(iteration, model, concurrency=1), backend=backend)
    assert (run.status, run.error, run.done, run.failed) == (
        RunStatus.STOPPED, "model is not running: start it", 0, 0
    )
    assert not ProposalOutcome.objects.exists()
    # With one worker and a window of two, the run stops after at most two calls, not five.
    assert len(backend.calls) <= 2


def test_a_failed_image_is_retried_by_the_next_run(setup):
    iteration, images, model = setup
    run_proposals(run=_run(iteration, model), backend=FakeBackend(
        default=[BOX], raise_for={"img-2.jpg": ImageProposalError("ThrottlingException", "slow down")}
    ))
    backend = FakeBackend(default=[BOX])
    run = run_proposals(run=_run(iteration, model), backend=backend)
    assert backend.calls == ["img-2.jpg"]
    assert (run.status, run.done, run.failed, run.proposals) == (RunStatus.SUCCEEDED, 5, 0, 5)
    assert ProposalOutcome.objects.filter(ok=False).count() == 0


class Killed(BaseException):
    """Stands in for the worker being killed (SIGTERM/KeyboardInterrupt) mid-batch."""


def test_resume_after_a_kill_skips_done_images_and_never_duplicates(setup):
    iteration, images, model = setup
    killing = FakeBackend(default=[BOX, Detection("smile-logo", 60.0, (1.0, 2.0, 3.0, 4.0))],
                          raise_for={"img-3.jpg": Killed()})
    run = _run(iteration, model, concurrency=1)
    with pytest.raises(Killed):
        run_proposals(run=run, backend=killing, batch_size=10)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    done_before = set(ProposalOutcome.objects.values_list("image__name", flat=True))
    # One worker and a window of two: img-0 and img-1 were written before img-3 was even submitted;
    # img-2 may or may not have been written when the kill arrived.
    assert done_before >= {"img-0.jpg", "img-1.jpg"}
    assert "img-3.jpg" not in done_before

    # The task is run again for the same run (the worker restarted), then once more.
    backend = FakeBackend(default=[BOX, Detection("smile-logo", 60.0, (1.0, 2.0, 3.0, 4.0))])
    run = run_proposals(run=run, backend=backend, batch_size=10)
    assert sorted(backend.calls) == sorted({f"img-{n}.jpg" for n in range(5)} - done_before)
    assert (run.status, run.done, run.failed, run.proposals) == (RunStatus.SUCCEEDED, 5, 0, 10)
    again = FakeBackend(default=[BOX])
    rerun = run_proposals(run=_run(iteration, model), backend=again)
    assert again.calls == []
    assert (rerun.status, rerun.done, rerun.proposals) == (RunStatus.SUCCEEDED, 5, 10)
    assert Proposal.objects.filter(model_version=model).count() == 10
    assert ProposalOutcome.objects.filter(model_version=model).count() == 5


def test_a_new_run_supersedes_an_unfinished_one(setup):
    iteration, images, model = setup
    old = _run(iteration, model)
    new = _run(iteration, model)
    old.refresh_from_db()
    assert (old.status, old.error) == (RunStatus.STOPPED, f"superseded by run #{new.pk}")
    backend = FakeBackend(default=[BOX])
    assert run_proposals(run=old, backend=backend).status == RunStatus.STOPPED
    assert backend.calls == []


def test_superseded_while_running_stops_at_the_next_batch(setup):
    iteration, images, model = setup
    run = _run(iteration, model, concurrency=1)

    def supersede(done, total):
        # Progress is reported on the run's own thread right before it checks for a newer run.
        ProposalRun.objects.filter(pk=run.pk).update(status=RunStatus.STOPPED)

    backend = FakeBackend(default=[BOX])
    result = run_proposals(run=run, backend=backend, batch_size=1, progress=supersede)
    assert result.status == RunStatus.STOPPED
    assert result.error == "superseded by a newer run of this model"
    assert len(backend.calls) < 5


def test_progress_is_reported_per_batch_and_at_the_end(setup):
    iteration, images, model = setup
    seen = []
    run_proposals(run=_run(iteration, model), backend=FakeBackend(default=[BOX]), batch_size=2,
                  progress=lambda done, total: seen.append((done, total)))
    # After each of the three batches (2, 2, 1 images) and once at the end.
    assert len(seen) == 4
    assert seen[-1] == (5, 5)
    assert all(total == 5 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_unknown_labels_are_skipped_and_named(setup):
    iteration, images, model = setup
    outcome = store_detections(image=images[0], model_version=model, detections=[
        BOX, Detection("cat", 99.0, None), Detection("dog", 50.0, None), Detection("cat", 40.0, None),
    ])
    assert (outcome.proposals, outcome.skipped_labels) == (1, ("cat", "dog"))
    row = ProposalOutcome.objects.get(image=images[0])
    assert (row.ok, row.error_code, row.error) == (
        True, "UnknownLabels", "skipped 3 detection(s) of labels not in the project: cat, dog"
    )


def test_store_detections_replaces_and_never_duplicates(setup):
    iteration, images, model = setup
    store_detections(image=images[0], model_version=model, detections=[BOX, BOX])
    store_detections(image=images[0], model_version=model, detections=[BOX])
    assert Proposal.objects.filter(image=images[0]).count() == 1
    assert ProposalOutcome.objects.filter(image=images[0]).count() == 1


def test_invalid_detection_fails_the_image_and_writes_nothing(setup):
    iteration, images, model = setup
    bad = Detection("aws-logo", 80.0, (10.0, 20.0, 0.0, 40.0))
    run = run_proposals(run=_run(iteration, model), backend=FakeBackend(
        {"img-0.jpg": [BOX, bad]}, default=[]
    ))
    assert (run.done, run.failed) == (4, 1)
    outcome = ProposalOutcome.objects.get(image=images[0])
    assert (outcome.ok, outcome.error_code) == (False, "InvalidDetection")
    assert outcome.error == (
        "box (10.0, 20.0, 0.0, 40.0) of 'aws-logo' needs left, top >= 0 and width, height > 0"
    )
    assert not Proposal.objects.filter(image=images[0]).exists()


def test_uncertainty_formula():
    assert uncertainty_score([]) == 0.0
    assert uncertainty_score([(99.0, 50.0)]) == 0.51
    assert uncertainty_score([(55.0, 50.0), (40.0, 50.0), (90.0, 50.0)]) == 2.95


def test_run_requests_are_checked(setup):
    iteration, images, model = setup
    imported = make_model_version(iteration.project, "csv", kind=ModelVersion.Kind.IMPORTED)
    other = make_model_version(make_project("other"), "x", kind=ModelVersion.Kind.REKOGNITION)
    cases = [(imported, 4), (other, 4), (model, 0), (model, 33)]
    messages = []
    for version, concurrency in cases:
        with pytest.raises(ProposalRunError) as info:
            create_proposal_run(iteration=iteration, model_version=version, concurrency=concurrency)
        messages.append(str(info.value))
    assert messages == [
        "model version 'csv' holds imported predictions and cannot run: pick a Rekognition or "
        "offline model",
        "model version 'x' belongs to another project than logos/v2",
        "concurrency must be between 1 and 32",
        "concurrency must be between 1 and 32",
    ]
    assert not ProposalRun.objects.exists()


def test_backend_for_imported_model_explains(setup):
    iteration, images, model = setup
    imported = make_model_version(iteration.project, "csv", kind=ModelVersion.Kind.IMPORTED)
    with pytest.raises(ModelNotReady, match="'csv' holds imported predictions and cannot run"):
        backend_for(imported)


def test_backend_for_rekognition(setup):
    from projects.proposals.rekognition import RekognitionBackend

    iteration, images, model = setup
    backend = backend_for(model, client=object())
    assert isinstance(backend, RekognitionBackend)
    assert backend.model_version == model


def test_start_proposal_run_enqueues_the_task(setup, monkeypatch):
    iteration, images, model = setup
    from projects.proposals import runs as proposals

    monkeypatch.setattr(proposals, "backend_for", lambda model_version: FakeBackend(default=[BOX]))
    run = start_proposal_run(iteration=iteration, model_version=model, concurrency=3)
    assert (run.status, run.done, run.concurrency) == (RunStatus.SUCCEEDED, 5, 3)
    assert run.task_id != ""


def test_a_backend_that_cannot_be_built_fails_the_run_visibly(setup, monkeypatch):
    iteration, images, model = setup
    from projects.proposals import runs as proposals

    def broken(model_version):
        raise RuntimeError("detector file is corrupt")

    monkeypatch.setattr(proposals, "backend_for", broken)
    run = _run(iteration, model)
    with pytest.raises(RuntimeError):
        run_proposals(run=run)
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "RuntimeError: detector file is corrupt")
    assert run.finished_at is not None


def test_backend_for_local_models_uses_the_offline_detector(setup):
    iteration, images, model = setup
    local = make_model_version(iteration.project, "local-1", kind=ModelVersion.Kind.LOCAL, status="FAILED")
    run = run_proposals(run=_run(iteration, local))
    assert (run.status, run.error) == (RunStatus.STOPPED, "model local-1 is not a ready local model")


def test_a_database_failure_fails_the_run_with_counts_matching_what_was_written(setup, monkeypatch):
    iteration, images, model = setup
    from projects.proposals import runs as proposals

    real_store = proposals.store_detections

    def failing_store(*, image, **kwargs):
        if image.name == "img-3.jpg":
            raise RuntimeError("disk full")
        return real_store(image=image, **kwargs)

    monkeypatch.setattr(proposals, "store_detections", failing_store)
    run = _run(iteration, model, concurrency=1)
    with pytest.raises(RuntimeError):
        run_proposals(run=run, backend=FakeBackend(default=[BOX]))
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "RuntimeError: disk full")
    written = ProposalOutcome.objects.filter(ok=True).count()
    assert written >= 2
    assert (run.done, run.proposals) == (written, written)
    assert Proposal.objects.count() == written


# -- which model the iteration shows ----------------------------------------------------------------

def shown_model(iteration):
    iteration.refresh_from_db(fields=["shown_model"])
    return iteration.shown_model


@pytest.fixture
def shown(setup):
    """The iteration already shows an earlier model's proposals."""
    iteration, images, model = setup
    earlier = make_model_version(iteration.project, "batch-0", kind=ModelVersion.Kind.IMPORTED)
    iteration.shown_model = earlier
    iteration.save(update_fields=["shown_model"])
    return iteration, images, model, earlier


def test_queuing_a_run_does_not_switch_the_iteration(shown):
    iteration, images, model, earlier = shown
    _run(iteration, model)
    assert shown_model(iteration) == earlier


@pytest.mark.parametrize("message", [
    NOT_RUNNING_MESSAGE,
    "access denied by Rekognition (no): allow rekognition:DetectCustomLabels",
])
def test_a_run_that_stops_before_storing_anything_keeps_the_earlier_model(shown, message):
    iteration, images, model, earlier = shown
    backend = FakeBackend(raise_for={image.name: ModelNotReady(message) for image in images})
    run = run_proposals(run=_run(iteration, model, concurrency=1), backend=backend)
    assert (run.status, run.error, run.done) == (RunStatus.STOPPED, message, 0)
    assert shown_model(iteration) == earlier


def test_a_run_that_cannot_build_its_backend_keeps_the_earlier_model(shown):
    iteration, images, model, earlier = shown
    local = make_model_version(iteration.project, "local-1", kind=ModelVersion.Kind.LOCAL, status="FAILED")
    run = run_proposals(run=_run(iteration, local))
    assert run.status == RunStatus.STOPPED
    assert shown_model(iteration) == earlier


def test_a_run_switches_the_iteration_with_its_first_stored_image(shown):
    iteration, images, model, earlier = shown
    # img-0 is stored, then the model stops serving: what was stored is what reviewers see.
    backend = FakeBackend(default=[BOX], raise_for={
        image.name: ModelNotReady(NOT_RUNNING_MESSAGE) for image in images[1:]
    })
    run = run_proposals(run=_run(iteration, model, concurrency=1), backend=backend)
    assert (run.status, run.done, run.proposals) == (RunStatus.STOPPED, 1, 1)
    assert shown_model(iteration) == model


def test_a_run_whose_every_image_failed_keeps_the_earlier_model(shown):
    iteration, images, model, earlier = shown
    backend = FakeBackend(raise_for={
        image.name: ImageProposalError("InvalidImageFormatException", "bad") for image in images
    })
    run = run_proposals(run=_run(iteration, model), backend=backend)
    assert (run.status, run.done, run.failed) == (RunStatus.SUCCEEDED, 0, 5)
    assert shown_model(iteration) == earlier


def test_a_successful_run_with_nothing_left_to_do_shows_its_model(shown):
    iteration, images, model, earlier = shown
    run_proposals(run=_run(iteration, model), backend=FakeBackend(default=[BOX]))
    iteration.shown_model = earlier
    iteration.save(update_fields=["shown_model"])
    backend = FakeBackend(default=[BOX])
    run = run_proposals(run=_run(iteration, model), backend=backend)
    assert (backend.calls, run.status, run.done) == ([], RunStatus.SUCCEEDED, 5)
    assert shown_model(iteration) == model


def test_the_callers_iteration_sees_the_switch(setup):
    iteration, images, model = setup
    run = _run(iteration, model)
    assert iteration.shown_model is None
    run_proposals(run=run, backend=FakeBackend(default=[BOX]))
    assert iteration.shown_model == model


# -- counting ---------------------------------------------------------------------------------------

def test_a_run_counts_its_images_once_when_it_starts(setup):
    from projects.proposals.views import run_context

    iteration, images, model = setup
    run = _run(iteration, model)
    run.refresh_from_db()
    assert (run.status, run.total) == (RunStatus.QUEUED, 0)
    # Queued, not counted yet: shown at 0%, not as done.
    assert run_context(run)["percent"] == 0
    make_image(iteration, source="s3://b/v2/img-late.jpg", position=9)
    run = run_proposals(run=run, backend=FakeBackend(default=[BOX]))
    assert (run.total, run.done) == (6, 6)
    assert run_context(run)["percent"] == 100


@pytest.mark.django_db(transaction=True)
def test_a_proposal_run_goes_through_the_database_worker(setup, database_tasks, monkeypatch):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from projects.proposals import runs as proposals

    iteration, images, model = setup
    monkeypatch.setattr(proposals, "backend_for", lambda model_version: FakeBackend(default=[BOX]))
    run = start_proposal_run(iteration=iteration, model_version=model, concurrency=2)
    assert (run.status, run.done) == (RunStatus.QUEUED, 0)

    database_tasks()

    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.failed, run.proposals, run.error) == (
        RunStatus.SUCCEEDED, 5, 5, 0, 5, "")
    assert run.started_at <= run.heartbeat_at <= run.finished_at
    assert DBTaskResult.objects.get(pk=run.task_id).status == TaskResultStatus.SUCCESSFUL
    iteration.refresh_from_db()
    assert iteration.shown_model == model
