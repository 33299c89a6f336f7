"""The manifest importer's batches: exact per-line reports, idempotence, priority and outcomes."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects.manifests.importing import import_manifest
from projects.models import Image, ModelVersion, Proposal, ProposalOutcome
from reviewer.models import Box
from tests.factories import make_image, make_iteration, make_model_version, make_project, thresholds
from tests.projects.manifests.test_importing import attribute, boxes_of, manifest_line

pytestmark = pytest.mark.django_db

CLASSES = {"0": "aws-logo", "1": "smile-logo"}


@pytest.fixture
def iteration():
    return make_iteration(make_project("logos"), "v1")


def truth_line(n, **size):
    return manifest_line(f"s3://b/{n}.jpg", bb=attribute([(0, 10 + n, 20, 30, 40)], CLASSES, **size))


def machine_line(source, confidences=(0.55, 0.95)):
    boxes = [(k % 2, 10 + 50 * k, 20, 30, 40) for k in range(len(confidences))]
    return manifest_line(source, bb=attribute(boxes, CLASSES, human="no", confidences=list(confidences)))


@pytest.mark.parametrize("batch_size", [1000, 2])
def test_bad_lines_in_the_middle_of_a_batch_are_reported_with_their_numbers(iteration, batch_size):
    make_image(iteration, source="s3://b/3.jpg", width=640, height=480, position=0)
    lines = [truth_line(1), truth_line(2), truth_line(3), "{not json", truth_line(5), "", truth_line(7)]
    report = import_manifest(iteration=iteration, lines=lines, batch_size=batch_size)
    assert [number for number, _ in report.errors] == [3, 4]
    assert report.errors[0][1] == ("image_size 1024x768 differs from the image's 640x480 in Loupe; "
                                   "the boxes would land in the wrong place")
    assert (report.lines, report.imported, report.images_created, report.boxes) == (6, 4, 4, 4)
    imported = iteration.images.filter(status=Image.Status.REVIEWED).order_by("position")
    assert [image.source for image in imported] == [f"s3://b/{n}.jpg" for n in (1, 2, 5, 7)]
    assert [image.position for image in imported] == [1, 2, 3, 4]
    assert [image.version for image in imported] == [1, 1, 1, 1]
    assert boxes_of(imported[2]) == [("aws-logo", 15.0, 20.0, 30.0, 40.0)]
    assert iteration.images.get(source="s3://b/3.jpg").boxes.count() == 0


def test_warnings_stay_in_line_order_across_read_and_write(iteration):
    outside = manifest_line("s3://b/2.jpg", bb=attribute([(0, 5000, 20, 30, 40)], CLASSES))
    ignored = json.dumps({"source-ref": "s3://b/3.jpg", "cls": 1,
                          "cls-metadata": {"type": "groundtruth/image-classification"}})
    report = import_manifest(iteration=iteration, lines=[truth_line(1), outside, ignored, truth_line(4)])
    assert [number for number, _ in report.warnings] == [2, 3]
    assert report.warnings[0][1] == "bb box 0 lies outside the image: skipped"


def test_one_image_twice_in_a_batch_is_written_in_line_order(iteration):
    first = truth_line(1)
    newer = attribute([(1, 1, 2, 3, 4)], CLASSES, date="2026-11-29T10:00:00")
    second = manifest_line("s3://b/1.jpg", bb=newer)
    report = import_manifest(iteration=iteration, lines=[first, truth_line(2), second])
    assert (report.imported, report.images_created, report.errors) == (3, 2, [])
    image = iteration.images.get(source="s3://b/1.jpg")
    assert boxes_of(image) == [("smile-logo", 1.0, 2.0, 3.0, 4.0)]
    assert image.version == 2


def test_importing_again_in_batches_changes_nothing(iteration):
    lines = [truth_line(n) for n in range(7)] + [machine_line(f"s3://b/m{n}.jpg") for n in range(3)]
    import_manifest(iteration=iteration, lines=lines, batch_size=3)

    def state():
        return (
            list(Image.objects.order_by("id").values_list(
                "source", "position", "version", "status", "priority")),
            list(Box.objects.order_by("id").values_list("image__source", "label__name", "left", "origin")),
            sorted(Proposal.objects.values_list("image__source", "label__name", "left", "confidence")),
            sorted(ProposalOutcome.objects.values_list("image__source", "ok", "proposals")),
        )

    before = state()
    report = import_manifest(iteration=iteration, lines=lines, batch_size=3)
    assert (report.imported, report.images_created, report.boxes, report.proposals) == (10, 0, 7, 6)
    assert state() == before


@pytest.mark.parametrize("existing", [False, True])
def test_manifest_proposals_get_the_queue_priority_and_outcome_of_a_run(iteration, existing):
    if existing:
        make_image(iteration, source="s3://b/m.jpg")
    model = make_model_version(iteration.project, "imported:v1:bb",
                               thresholds=thresholds(iteration.project, {"aws-logo": 80, "smile-logo": 80}))
    lines = [machine_line("s3://b/m.jpg"), machine_line("s3://b/n.jpg", ())]
    import_manifest(iteration=iteration, lines=lines)
    image = iteration.images.get(source="s3://b/m.jpg")
    # |55 - 80| = 25 is outside the uncertain band, |95 - 80| = 15 on its edge: 1 + (1 - 15/100).
    assert image.priority == 1.85
    outcomes = ProposalOutcome.objects.filter(image=image)
    assert list(outcomes.values_list("model_version", "ok", "proposals", "run")) == [
        (model.pk, True, 2, None)]
    empty = iteration.images.get(source="s3://b/n.jpg")
    assert empty.priority == 0.0
    assert list(ProposalOutcome.objects.filter(image=empty).values_list("proposals", flat=True)) == [0]


def test_default_thresholds_order_manifest_proposals(iteration):
    import_manifest(iteration=iteration, lines=[machine_line("s3://b/m.jpg", (0.55, 0.99)),
                                                machine_line("s3://b/o.jpg", (0.99,))])
    assert ModelVersion.objects.get().name == "imported:v1:bb"
    # Default threshold 50: 55 is borderline (5 away), 99 is not.
    assert dict(iteration.images.values_list("source", "priority")) == {
        "s3://b/m.jpg": 1.95, "s3://b/o.jpg": 0.51}


def test_the_queries_of_an_import_do_not_grow_with_its_lines(iteration):
    def queries(first, count):
        lines = [truth_line(n) for n in range(first, first + count)] + [
            machine_line(f"s3://b/m{n}.jpg") for n in range(first, first + count)]
        with CaptureQueriesContext(connection) as captured:
            report = import_manifest(iteration=iteration, lines=lines)
        assert report.imported == 2 * count
        return len(captured)

    queries(0, 1)  # creates the imported model version and sets it as the shown model
    # Labels, last position, the savepoint, the batch's images, the model version, one insert of
    # the images, their ids, one insert each of boxes, proposals and outcomes, the release.
    assert queries(100, 10) == queries(200, 300) == 11


def test_a_batch_whose_bulk_write_fails_is_written_line_by_line(iteration, monkeypatch):
    from django.db import IntegrityError

    from projects.manifests import importing

    def refuse(self):
        raise IntegrityError("refused")

    monkeypatch.setattr(importing._NewRows, "write", refuse)
    lines = [truth_line(1), machine_line("s3://b/m.jpg"), "{not json"]
    report = import_manifest(iteration=iteration, lines=lines)
    assert (report.imported, report.images_created, report.boxes, report.proposals) == (2, 2, 1, 2)
    assert [number for number, _ in report.errors] == [3]
    assert sorted(iteration.images.values_list("source", "priority")) == [
        ("s3://b/1.jpg", 0.0), ("s3://b/m.jpg", 1.95)]
    assert ProposalOutcome.objects.get().proposals == 2


def test_well_formed_and_malformed_attributes_in_one_batch_are_each_reported_exactly(iteration):
    def line(n, boxes, **options):
        return manifest_line(f"s3://b/{n}.jpg", bb=attribute(boxes, CLASSES, **options))

    lines = [
        truth_line(1),
        line(2, [(0, 10, 20, 30, 40)], confidences=[1.5]),
        line(3, [(0, 10, 20, 30, 40)], width=True),
        line(4, [(5, 10, 20, 30, 40)]),
        line(5, [(0, "10", 20, 30, 40)]),
        line(6, [(1, 10.5, 20.49, 29.6, 40)]),  # float pixels: edges on whole pixels
        line(7, [(0, 1000, 20, 100, 40), (1, 2000, 20, 30, 40)]),  # clipped, then wholly outside
        line(8, [(0, -1_000_001, 20, 30, 40)]),
        truth_line(9),
    ]
    report = import_manifest(iteration=iteration, lines=lines)
    assert report.errors == [
        (2, "bb: objects[0] needs a confidence between 0 and 1"),
        (3, "bb: image_size lacks a positive integer width up to 1,000,000"),
        (4, "bb: annotation 0: class_id 5 is not in class-map"),
        (5, "bb: annotation 0: left must be a number of pixels within 1,000,000"),
        (8, "bb: annotation 0: left must be a number of pixels within 1,000,000"),
    ]
    assert report.warnings == [(7, "bb box 1 lies outside the image: skipped")]
    assert (report.lines, report.imported, report.images_created, report.boxes) == (9, 4, 4, 4)
    assert boxes_of(iteration.images.get(source="s3://b/6.jpg")) == [("smile-logo", 11.0, 20.0, 29.0, 40.0)]
    assert boxes_of(iteration.images.get(source="s3://b/7.jpg")) == [("aws-logo", 1000.0, 20.0, 24.0, 40.0)]
    assert sorted(iteration.images.values_list("source", flat=True)) == [
        "s3://b/1.jpg", "s3://b/6.jpg", "s3://b/7.jpg", "s3://b/9.jpg"]
