import json

import pytest

from projects.models import ModelVersion, Proposal, ProposalOutcome
from projects.proposals.predictions import import_predictions, imported_model_version
from projects.proposals.rekognition import detections_from_custom_labels
from tests.factories import make_image, make_iteration, make_model_version, make_project, thresholds

pytestmark = pytest.mark.django_db


@pytest.fixture
def iteration():
    iteration = make_iteration(make_project("logos"), "v2")
    make_image(iteration, source="s3://b/v2/a.jpg", width=1000, height=500, position=1)
    make_image(iteration, source="s3://b/v2/b.jpg", width=200, height=100, position=2)
    return iteration


@pytest.fixture
def version(iteration):
    return imported_model_version(project=iteration.project, name="batch-1")


def rows(iteration, source):
    image = iteration.images.get(source=source)
    return list(image.proposals.order_by("id").values_list(
        "label__name", "left", "top", "width", "height", "confidence"
    ))


def manifest_line(source, annotations, confidences, *, class_map=None, attribute="bounding-box"):
    return json.dumps({
        "source-ref": source,
        attribute: {"image_size": [{"width": 200, "height": 100, "depth": 3}], "annotations": annotations},
        f"{attribute}-metadata": {
            "objects": [{"confidence": value} for value in confidences],
            "class-map": class_map or {"0": "aws-logo", "1": "smile-logo"},
            "type": "groundtruth/object-detection", "human-annotated": "no",
            "creation-date": "2026-11-28T10:15:03.123456",
        },
    })


def test_custom_labels_lines_become_pixel_proposals(iteration, version):
    line = json.dumps({"source-ref": "s3://b/v2/a.jpg", "CustomLabels": [
        {"Name": "aws-logo", "Confidence": 77.5,
         "Geometry": {"BoundingBox": {"Width": 0.2, "Height": 0.5, "Left": 0.1, "Top": 0.25}}},
        {"Name": "smile-logo", "Confidence": 12.0},
    ]})
    report = import_predictions(iteration=iteration, model_version=version, lines=[line])
    assert (report.lines, report.images, report.proposals, report.problems, report.notes) == (1, 1, 2, [], [])
    assert rows(iteration, "s3://b/v2/a.jpg") == [
        ("aws-logo", 100.0, 125.0, 200.0, 250.0, 77.5),
        ("smile-logo", None, None, None, None, 12.0),
    ]
    assert version.kind == ModelVersion.Kind.IMPORTED
    iteration.refresh_from_db()
    assert iteration.shown_model == version


def test_manifest_lines_become_proposals_with_confidence_times_100(iteration, version):
    line = manifest_line(
        "s3://b/v2/b.jpg",
        [{"class_id": 0, "left": 10, "top": 20, "width": 30, "height": 40},
         {"class_id": 1, "left": 180, "top": 90, "width": 40, "height": 40}],
        [0.87, 1],
    )
    report = import_predictions(iteration=iteration, model_version=version, lines=[line.encode()])
    assert (report.images, report.proposals, report.problems) == (1, 2, [])
    assert rows(iteration, "s3://b/v2/b.jpg") == [
        ("aws-logo", 10.0, 20.0, 30.0, 40.0, 87.0),
        # Clamped into the 200x100 frame.
        ("smile-logo", 180.0, 90.0, 20.0, 10.0, 100.0),
    ]


def test_classification_lines_become_image_level_proposals(iteration, version):
    line = json.dumps({
        "source-ref": "s3://b/v2/a.jpg", "logo": 1,
        "logo-metadata": {"class-name": "smile-logo", "confidence": 0.5,
                          "type": "groundtruth/image-classification", "human-annotated": "no",
                          "creation-date": "2026-11-28T10:15:03"},
    })
    report = import_predictions(iteration=iteration, model_version=version, lines=[line])
    assert report.problems == []
    assert rows(iteration, "s3://b/v2/a.jpg") == [("smile-logo", None, None, None, None, 50.0)]


def test_bad_lines_are_reported_with_numbers_and_good_lines_imported(iteration, version):
    good = json.dumps({"source-ref": "s3://b/v2/a.jpg",
                       "CustomLabels": [{"Name": "aws-logo", "Confidence": 60}]})
    box = {"Width": 0.1, "Height": 0.1, "Left": 0.1, "Top": 0.1}
    lines = [
        good,
        "{not json",
        "",
        json.dumps({"source-ref": "s3://b/v2/missing.jpg", "CustomLabels": []}),
        json.dumps({"source-ref": "s3://b/v2/b.jpg", "CustomLabels": [
            {"Name": "aws-logo", "Confidence": 90, "Geometry": {"BoundingBox": box}},
            {"Name": "aws-logo", "Confidence": 90, "Geometry": {"BoundingBox": {**box, "Width": 0}}},
        ]}),
        manifest_line("s3://b/v2/b.jpg", [{"class_id": 0, "left": 10, "top": 20, "width": -3, "height": 4}],
                      [0.5]),
        manifest_line("s3://b/v2/b.jpg", [{"class_id": 7, "left": 10, "top": 20, "width": 3, "height": 4}],
                      [0.5]),
        manifest_line("s3://b/v2/b.jpg", [{"class_id": 0, "left": 10, "top": 20, "width": 3, "height": 4}],
                      []),
        manifest_line("s3://b/v2/b.jpg", [{"class_id": 0, "left": 300, "top": 20, "width": 3, "height": 4}],
                      [0.5]),
        json.dumps({"source-ref": "s3://b/v2/b.jpg",
                    "CustomLabels": [{"Name": "aws-logo", "Confidence": 150}]}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"CustomLabels": []}),
        json.dumps({"source-ref": "s3://b/v2/b.jpg", "other": "x"}),
        b"\xff\xfe not utf-8",
        manifest_line("s3://b/v2/b.jpg", [{"class_id": 0, "left": 1, "top": 2, "width": 3, "height": 4}],
                      [2.5]),
    ]
    report = import_predictions(iteration=iteration, model_version=version, lines=lines)
    assert (report.lines, report.images, report.proposals) == (15, 1, 1)
    assert report.problems == [
        (2, "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (4, "no image s3://b/v2/missing.jpg in logos/v2"),
        (5, "CustomLabels[1]: invalid box (Width and Height must be > 0)"),
        (6, "bounding-box.annotations[0]: invalid box (width and height must be > 0)"),
        (7, "bounding-box: annotation 0: class_id 7 is not in class-map"),
        (8, "bounding-box: objects has 0 entries for 1 annotations"),
        (9, "bounding-box.annotations[0]: invalid box (it lies outside the 200x100 image)"),
        (10, "CustomLabels[0]: Confidence must be a number 0..100"),
        (11, "not a JSON object"),
        (12, "no source-ref"),
        (13, "no CustomLabels and no Ground Truth object-detection attribute"),
        (14, "not UTF-8 text"),
        (15, "bounding-box: objects[0] needs a confidence between 0 and 1"),
    ]
    # Nothing of a rejected line was written: line 5's valid first box is not there either.
    assert not Proposal.objects.filter(image__source="s3://b/v2/b.jpg").exists()
    assert list(ProposalOutcome.objects.values_list("image__source", flat=True)) == ["s3://b/v2/a.jpg"]


def test_unknown_labels_are_skipped_with_a_note_and_repeats_replace(iteration, version):
    first = json.dumps({"source-ref": "s3://b/v2/a.jpg", "CustomLabels": [
        {"Name": "aws-logo", "Confidence": 60}, {"Name": "cat", "Confidence": 60}]})
    again = json.dumps({"source-ref": "s3://b/v2/a.jpg",
                        "CustomLabels": [{"Name": "smile-logo", "Confidence": 30}]})
    report = import_predictions(iteration=iteration, model_version=version, lines=[first, again])
    assert report.notes == [
        (1, "skipped labels not in the project: cat"),
        (2, "replaces the proposals of line 1 for s3://b/v2/a.jpg"),
    ]
    assert (report.images, report.proposals) == (1, 2)
    assert rows(iteration, "s3://b/v2/a.jpg") == [("smile-logo", None, None, None, None, 30.0)]


@pytest.mark.parametrize("batch_size", [1000, 2, 1])
def test_a_repeated_image_replaces_the_line_before_it_in_any_batch(iteration, version, batch_size):
    lines = [json.dumps({"source-ref": "s3://b/v2/a.jpg",
                         "CustomLabels": [{"Name": "smile-logo", "Confidence": confidence}]})
             for confidence in (10, 20, 30)]
    report = import_predictions(iteration=iteration, model_version=version, lines=lines,
                                batch_size=batch_size)
    assert report.notes == [
        (2, "replaces the proposals of line 1 for s3://b/v2/a.jpg"),
        (3, "replaces the proposals of line 2 for s3://b/v2/a.jpg"),
    ]
    assert (report.images, report.proposals) == (1, 3)
    assert rows(iteration, "s3://b/v2/a.jpg") == [("smile-logo", None, None, None, None, 30.0)]


def test_several_attributes_need_a_choice(iteration, version):
    data = json.loads(manifest_line("s3://b/v2/b.jpg", [], []))
    data.update(json.loads(manifest_line("s3://b/v2/b.jpg", [
        {"class_id": 1, "left": 1, "top": 2, "width": 3, "height": 4}], [0.25], attribute="adjusted")))
    line = json.dumps(data)
    report = import_predictions(iteration=iteration, model_version=version, lines=[line])
    assert report.problems == [
        (1, "several label attributes (adjusted, bounding-box): choose one with --attribute")
    ]
    report = import_predictions(
        iteration=iteration, model_version=version, lines=[line], attribute="adjusted"
    )
    assert report.problems == []
    assert rows(iteration, "s3://b/v2/b.jpg") == [("smile-logo", 1.0, 2.0, 3.0, 4.0, 25.0)]


def test_existing_model_versions_are_reused(iteration):
    existing = make_model_version(iteration.project, "rk", kind=ModelVersion.Kind.REKOGNITION)
    assert imported_model_version(project=iteration.project, name="rk") == existing
    assert ModelVersion.objects.count() == 1


def test_manifest_lines_for_an_image_of_another_size_are_reported(iteration, version):
    # manifest_line says 200x100; a.jpg is 1000x500 in Loupe: its boxes would land 5x off.
    wrong = manifest_line("s3://b/v2/a.jpg", [{"class_id": 0, "left": 10, "top": 20, "width": 30,
                                               "height": 40}], [0.9])
    right = manifest_line("s3://b/v2/b.jpg", [{"class_id": 0, "left": 10, "top": 20, "width": 30,
                                               "height": 40}], [0.9])
    report = import_predictions(iteration=iteration, model_version=version, lines=[wrong, right])
    assert report.problems == [
        (1, "image_size 200x100 differs from the image's 1000x500 in Loupe; the boxes would land in "
            "the wrong place"),
    ]
    assert (report.images, report.proposals) == (1, 1)
    assert rows(iteration, "s3://b/v2/a.jpg") == []
    assert rows(iteration, "s3://b/v2/b.jpg") == [("aws-logo", 10.0, 20.0, 30.0, 40.0, 90.0)]


def test_custom_labels_boxes_outside_the_image_are_reported(iteration, version):
    line = json.dumps({"source-ref": "s3://b/v2/b.jpg", "CustomLabels": [
        {"Name": "aws-logo", "Confidence": 90,
         "Geometry": {"BoundingBox": {"Width": 0.1, "Height": 0.1, "Left": 1.5, "Top": 0.1}}},
    ]})
    report = import_predictions(iteration=iteration, model_version=version, lines=[line])
    assert report.problems == [(1, "CustomLabels[0]: invalid box (it lies outside the 200x100 image)")]


# --- batches ----------------------------------------------------------------------------------------


def batch_lines():
    return [
        json.dumps({"source-ref": "s3://b/v2/a.jpg", "CustomLabels": [
            {"Name": "aws-logo", "Confidence": 75}, {"Name": "cat", "Confidence": 60}]}),
        json.dumps({"source-ref": "s3://b/v2/missing.jpg", "CustomLabels": []}),
        json.dumps({"source-ref": "s3://b/v2/b.jpg", "CustomLabels": [
            {"Name": "smile-logo", "Confidence": 99}, {"Name": "aws-logo", "Confidence": 150}]}),
        json.dumps({"source-ref": "s3://b/v2/b.jpg", "CustomLabels": [
            {"Name": "smile-logo", "Confidence": 99}, {"Name": "aws-logo", "Confidence": 30}]}),
    ]


def assert_batch_import(iteration, version, report):
    assert (report.lines, report.images, report.proposals) == (4, 2, 3)
    assert report.problems == [
        (2, "no image s3://b/v2/missing.jpg in logos/v2"),
        (3, "CustomLabels[1]: Confidence must be a number 0..100"),
    ]
    assert report.notes == [(1, "skipped labels not in the project: cat")]
    # Threshold 80 for both labels: 75 is 5 away (1 + 0.95); 99 and 30 are 19 and 50 away (0 + 0.81).
    assert dict(iteration.images.values_list("source", "priority")) == {
        "s3://b/v2/a.jpg": 1.95, "s3://b/v2/b.jpg": 0.81}
    outcomes = ProposalOutcome.objects.values_list("image__source", "ok", "proposals", "error_code", "error")
    assert sorted(outcomes) == [("s3://b/v2/a.jpg", True, 1, "UnknownLabels",
             "skipped 1 detection(s) of labels not in the project: cat"),
            ("s3://b/v2/b.jpg", True, 2, "", "")]


@pytest.mark.parametrize("batch_size", [1000, 2, 1])
def test_batches_report_each_line_and_set_priority_and_outcomes(iteration, version, batch_size):
    version.thresholds = thresholds(iteration.project, {"aws-logo": 80, "smile-logo": 80})
    version.save()
    report = import_predictions(iteration=iteration, model_version=version, lines=batch_lines(),
                                batch_size=batch_size)
    assert_batch_import(iteration, version, report)


def test_a_batch_whose_bulk_write_fails_is_written_line_by_line(iteration, version, monkeypatch):
    from django.db import IntegrityError

    from projects.proposals import predictions

    def refuse(*args):
        raise IntegrityError("refused")

    monkeypatch.setattr(predictions, "_write", refuse)
    version.thresholds = thresholds(iteration.project, {"aws-logo": 80, "smile-logo": 80})
    version.save()
    report = import_predictions(iteration=iteration, model_version=version, lines=batch_lines())
    assert_batch_import(iteration, version, report)


def box(left, top, width, height):
    return {"Geometry": {"BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height}}}


@pytest.mark.parametrize("item", [
    {"Name": "aws-logo", "Confidence": 77.5, **box(0.1, 0.25, 0.2, 0.5)},
    {"Name": "aws-logo", "Confidence": 100, **box(0, 0, 1, 1)},
    {"Name": "aws-logo", "Confidence": 0, **box(0.123456789, 0.987654321, 0.333333333, 0.0123)},
    {"Name": "smile-logo", "Confidence": 50.0, **box(0.9, -0.1, 0.3, 0.3)},  # overhangs: clipped
    {"Name": "smile-logo", "Confidence": 50.0, **box(-2, -2, 2.0005, 2.001)},
    {"Name": "smile-logo", "Confidence": 50.0, **box(0.5, 0.5, 1e-7, 0.1)},  # rounds to no width
    {"Name": "smile-logo", "Confidence": 50.0, **box(1.5, 0.1, 0.1, 0.1)},  # wholly outside
    {"Name": "smile-logo", "Confidence": 50.0, **box(0.1, 0.1, 0, 0.1)},
    {"Name": "smile-logo", "Confidence": 50.0, **box(1e300, 0.1, 0.1, 0.1)},
    {"Name": "smile-logo", "Confidence": 50.0, **box("0.1", 0.1, 0.1, 0.1)},
    {"Name": "smile-logo", "Confidence": 50.0, **box(True, 0.1, 0.1, 0.1)},
    {"Name": "smile-logo", "Confidence": True, **box(0.1, 0.1, 0.1, 0.1)},
    {"Name": "smile-logo", "Confidence": 100.5, **box(0.1, 0.1, 0.1, 0.1)},
    {"Name": 5, "Confidence": 50.0, **box(0.1, 0.1, 0.1, 0.1)},
    {"Name": "smile-logo", "Confidence": 50.0},
    {"Name": "smile-logo", "Confidence": 50.0, "Geometry": []},
    {"Name": "smile-logo", "Confidence": 50.0, "Geometry": {"BoundingBox": [0.1]}},
    {"Name": "cat", "Confidence": 50.0, **box(0.1, 0.1, 0.1, 0.1)},
])
def test_custom_labels_land_where_detections_from_custom_labels_puts_them(iteration, version, item):
    line = json.dumps({"source-ref": "s3://b/v2/a.jpg", "CustomLabels": [item]})
    report = import_predictions(iteration=iteration, model_version=version, lines=[line])
    try:
        expected = detections_from_custom_labels([item], width=1000, height=500, drop_outside=False)
    except ValueError as error:
        assert (report.images, report.problems) == (0, [(1, str(error))])
        return
    assert report.problems == []
    assert rows(iteration, "s3://b/v2/a.jpg") == [
        (found.label, *(found.box or (None,) * 4), found.confidence)
        for found in expected if found.label != "cat"]
