import io
import json
from datetime import UTC, datetime

import pytest

from projects.geometry import frame_pixels
from projects.manifests.export import (
    ATTRIBUTE,
    DETECTION_TYPE,
    METADATA,
    ManifestError,
    format_creation_date,
    iter_manifest_lines,
    validate_export,
    write_manifest,
)
from projects.models import Image
from tests.factories import (
    make_box,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    thresholds,
)

pytestmark = pytest.mark.django_db

REVIEWED_AT = datetime(2026, 11, 28, 10, 15, 3, 123456, tzinfo=UTC)
SPEC_LINE = {
    "source-ref": "s3://my-bucket/v2/train/img-0007.jpg",
    "bounding-box": {
        "image_size": [{"width": 1024, "height": 768, "depth": 3}],
        "annotations": [
            {"class_id": 0, "left": 120, "top": 88, "width": 310, "height": 140},
            {"class_id": 1, "left": 600, "top": 402, "width": 96, "height": 97},
        ],
    },
    "bounding-box-metadata": {
        "objects": [{"confidence": 1}, {"confidence": 1}],
        "class-map": {"0": "aws-logo", "1": "smile-logo"},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2026-11-28T10:15:03.123456",
        "job-name": "loupe/logos/v2",
    },
}


def build_line(*, source_ref, width, height, depth, boxes, class_names, human_annotated=True,
               creation_date, job):
    """The manifest object for one image, built the plain way: the reference LineFormatter must match.

    boxes: (class_id, left, top, width, height, confidence 0..1) in pixels (floats are fine);
    class_names: {class_id: label name}; creation_date: a datetime or an already formatted string.
    """
    annotations = []
    objects = []
    used = {}
    for class_id, left, top, box_width, box_height, confidence in boxes:
        x, y, w, h = frame_pixels((left, top, box_width, box_height), width, height)
        annotations.append({"class_id": class_id, "left": x, "top": y, "width": w, "height": h})
        objects.append({"confidence": confidence})
        used[class_id] = class_names[class_id]
    if not isinstance(creation_date, str):
        creation_date = format_creation_date(creation_date)
    return {
        "source-ref": source_ref,
        ATTRIBUTE: {
            "image_size": [{"width": width, "height": height, "depth": depth}],
            "annotations": annotations,
        },
        METADATA: {
            "objects": objects,
            "class-map": {str(class_id): used[class_id] for class_id in sorted(used)},
            "type": DETECTION_TYPE,
            "human-annotated": "yes" if human_annotated else "no",
            "creation-date": creation_date,
            "job-name": job,
        },
    }


def reviewed(iteration, source, *boxes, **fields):
    fields.setdefault("reviewed_at", REVIEWED_AT)
    image = make_image(iteration, source=source, status=Image.Status.REVIEWED, **fields)
    for label_name, box in boxes:
        make_box(image, label_name, box)
    return image


@pytest.fixture
def iteration():
    return make_iteration(make_project("logos"), "v2")


def export_text(iteration, **options):
    return "".join(iter_manifest_lines(iteration=iteration, **options))


def test_spec_example_line_is_exported_exactly(iteration):
    reviewed(iteration, "s3://my-bucket/v2/train/img-0007.jpg",
             ("aws-logo", (120, 88, 310, 140)), ("smile-logo", (600, 402, 96, 97)))
    assert export_text(iteration) == json.dumps(SPEC_LINE) + "\n"


def test_reference_build_line_matches_the_spec():
    line = build_line(
        source_ref="s3://my-bucket/v2/train/img-0007.jpg", width=1024, height=768, depth=3,
        boxes=[(0, 120, 88, 310, 140, 1), (1, 600, 402, 96, 97, 1)],
        class_names={0: "aws-logo", 1: "smile-logo"}, creation_date=REVIEWED_AT, job="loupe/logos/v2",
    )
    assert line == SPEC_LINE


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((120, 88, 310, 140), (120, 88, 310, 140)),
        # Edges are rounded half up, then the size is the difference of the rounded edges.
        ((10.4, 20.5, 100.5, 50.49), (10, 21, 101, 50)),
        ((0.5, 1.5, 2.5, 2.5), (1, 2, 2, 2)),
        # Clamped into the 1024x768 frame at every edge.
        ((-5.6, -0.4, 20, 10), (0, 0, 14, 10)),
        ((1000, 700, 100, 100), (1000, 700, 24, 68)),
        ((1023.6, 767.6, 10, 10), (1023, 767, 1, 1)),
        ((0, 0, 1024, 768), (0, 0, 1024, 768)),
        ((-10, -10, 2000, 2000), (0, 0, 1024, 768)),
        # Wholly outside or thinner than half a pixel: kept as a 1 px box inside the frame.
        ((1030, 10, 5, 5), (1023, 10, 1, 5)),
        ((100.2, 100, 0.2, 10), (100, 100, 1, 10)),
    ],
)
def test_frame_pixels_rounds_then_clamps_into_the_frame(box, expected):
    assert frame_pixels(box, 1024, 768) == expected


def test_boxes_at_the_frame_edges_export_inside_the_frame(iteration):
    reviewed(iteration, "s3://b/edge.jpg", ("aws-logo", (1000.4, 740.6, 30.2, 40)),
             ("smile-logo", (0.3, 0.2, 10.4, 10.4)), width=1024, height=768)
    line = json.loads(export_text(iteration))
    assert line["bounding-box"]["annotations"] == [
        {"class_id": 0, "left": 1000, "top": 741, "width": 24, "height": 27},
        {"class_id": 1, "left": 0, "top": 0, "width": 11, "height": 11},
    ]


def test_class_ids_follow_label_order_and_class_map_lists_used_labels(iteration):
    project = iteration.project
    project.labels.filter(name="smile-logo").update(order=0)
    project.labels.filter(name="aws-logo").update(order=1)
    reviewed(iteration, "s3://b/a.jpg", ("aws-logo", (1, 2, 3, 4)))
    reviewed(iteration, "s3://b/b.jpg", ("smile-logo", (1, 2, 3, 4)), ("aws-logo", (5, 6, 7, 8)))
    first, second = [json.loads(text) for text in export_text(iteration).splitlines()]
    assert first["bounding-box"]["annotations"][0]["class_id"] == 1
    assert first["bounding-box-metadata"]["class-map"] == {"1": "aws-logo"}
    assert [box["class_id"] for box in second["bounding-box"]["annotations"]] == [0, 1]
    assert second["bounding-box-metadata"]["class-map"] == {"0": "smile-logo", "1": "aws-logo"}
    assert second["bounding-box-metadata"]["objects"] == [{"confidence": 1}, {"confidence": 1}]


def test_empty_verified_images_export_with_no_annotations_unless_opted_out(iteration):
    reviewed(iteration, "s3://b/boxes.jpg", ("aws-logo", (1, 2, 3, 4)))
    reviewed(iteration, "s3://b/empty.jpg", no_objects=True)
    make_image(iteration, source="s3://b/pending.jpg")
    lines = [json.loads(text) for text in export_text(iteration).splitlines()]
    assert [line["source-ref"] for line in lines] == ["s3://b/boxes.jpg", "s3://b/empty.jpg"]
    assert lines[1]["bounding-box"] == {
        "image_size": [{"width": 1024, "height": 768, "depth": 3}], "annotations": [],
    }
    assert lines[1]["bounding-box-metadata"]["objects"] == []
    assert lines[1]["bounding-box-metadata"]["class-map"] == {}
    assert lines[1]["bounding-box-metadata"]["human-annotated"] == "yes"
    no_empty = [json.loads(text)["source-ref"] for text in
                export_text(iteration, include_empty=False).splitlines()]
    assert no_empty == ["s3://b/boxes.jpg"]


def test_include_unreviewed_exports_proposals_above_each_threshold_as_machine_labels(iteration):
    project = iteration.project
    model = make_model_version(project, "v1", thresholds=thresholds(project, {"aws-logo": 60.0}))
    other = make_model_version(project, "v0")
    iteration.shown_model = model
    iteration.save()
    pending = make_image(iteration, source="s3://b/pending.jpg")
    make_proposal(pending, "aws-logo", (10, 10, 50, 50), confidence=59.9, model_version=model)
    make_proposal(pending, "aws-logo", (20, 20, 50, 50), confidence=60.0, model_version=model)
    # No threshold for smile-logo: the default of 50 applies.
    make_proposal(pending, "smile-logo", (30, 30, 50, 50), confidence=55.5, model_version=model)
    make_proposal(pending, "smile-logo", (40, 40, 50, 50), confidence=49.0, model_version=model)
    make_proposal(pending, "aws-logo", (50, 50, 50, 50), confidence=99.0, model_version=other)
    silent = make_image(iteration, source="s3://b/nothing-above.jpg")
    make_proposal(silent, "aws-logo", (10, 10, 50, 50), confidence=10.0, model_version=model)
    reviewed(iteration, "s3://b/reviewed.jpg", ("smile-logo", (1, 2, 3, 4)))
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    lines = [json.loads(text) for text in
             export_text(iteration, include_unreviewed=True, now=now).splitlines()]
    by_source = {line["source-ref"]: line for line in lines}
    assert set(by_source) == {"s3://b/pending.jpg", "s3://b/reviewed.jpg"}
    machine = by_source["s3://b/pending.jpg"]
    assert machine["bounding-box"]["annotations"] == [
        {"class_id": 0, "left": 20, "top": 20, "width": 50, "height": 50},
        {"class_id": 1, "left": 30, "top": 30, "width": 50, "height": 50},
    ]
    assert machine["bounding-box-metadata"]["objects"] == [{"confidence": 0.6}, {"confidence": 0.555}]
    assert machine["bounding-box-metadata"]["human-annotated"] == "no"
    assert machine["bounding-box-metadata"]["creation-date"] == "2026-12-01T08:00:00.000000"
    assert by_source["s3://b/reviewed.jpg"]["bounding-box-metadata"]["human-annotated"] == "yes"


def test_include_unreviewed_with_only_unreviewed_images(iteration):
    model = make_model_version(iteration.project, "v1")
    iteration.shown_model = model
    iteration.save()
    pending = make_image(iteration, source="s3://b/pending.jpg")
    make_proposal(pending, "smile-logo", (30, 30, 50, 50), confidence=100.0, model_version=model)
    line = json.loads(export_text(iteration, include_unreviewed=True, now=REVIEWED_AT))
    assert line["bounding-box"]["annotations"] == [
        {"class_id": 1, "left": 30, "top": 30, "width": 50, "height": 50}]
    assert line["bounding-box-metadata"]["objects"] == [{"confidence": 1.0}]


def test_include_unreviewed_without_a_model_version_is_refused(iteration):
    with pytest.raises(ManifestError, match="has no model version"):
        export_text(iteration, include_unreviewed=True)


def test_local_images_are_exported_with_their_published_address(iteration):
    project = iteration.project
    project.published_images_uri = "s3://published/logos/v2"
    project.save()
    reviewed(iteration, "images/logos/v2/sub/a.jpg", ("aws-logo", (1, 2, 3, 4)))
    reviewed(iteration, "elsewhere/b.jpg", ("aws-logo", (1, 2, 3, 4)))
    sources = [json.loads(text)["source-ref"] for text in export_text(iteration).splitlines()]
    assert sources == ["s3://published/logos/v2/sub/a.jpg", "s3://published/logos/v2/elsewhere/b.jpg"]


def test_local_images_without_a_published_address_are_refused_naming_the_setting(iteration):
    reviewed(iteration, "images/logos/v2/a.jpg", ("aws-logo", (1, 2, 3, 4)))
    with pytest.raises(ManifestError) as caught:
        export_text(iteration)
    assert "'Published images uri'" in str(caught.value)
    assert "project 'logos'" in str(caught.value)


def test_creation_date_is_utc_without_offset():
    from zoneinfo import ZoneInfo

    moment = datetime(2026, 11, 28, 11, 15, 3, 5, tzinfo=ZoneInfo("Europe/Paris"))
    assert format_creation_date(moment) == "2026-11-28T10:15:03.000005"


def test_unreviewed_date_falls_back_to_the_export_time(iteration):
    reviewed(iteration, "s3://b/a.jpg", ("aws-logo", (1, 2, 3, 4)), reviewed_at=None)
    line = json.loads(export_text(iteration, now=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert line["bounding-box-metadata"]["creation-date"] == "2027-01-02T03:04:05.000000"


def test_write_manifest_writes_lines_and_validates_them(iteration):
    reviewed(iteration, "s3://b/a.jpg", ("aws-logo", (1, 2, 3, 4)))
    reviewed(iteration, "s3://b/b.jpg", ("smile-logo", (1, 2, 3, 4)))
    out = io.StringIO()
    result = write_manifest(iteration=iteration, out=out)
    text = out.getvalue()
    assert text == export_text(iteration)
    assert result.lines == 2
    assert result.bytes == len(text.encode())
    assert result.report.ok
    assert result.report.labels == {"aws-logo": 1, "smile-logo": 1}


def test_export_queries_per_chunk_not_per_image(iteration, django_assert_num_queries):
    for number in range(7):
        reviewed(iteration, f"s3://b/{number}.jpg", ("aws-logo", (1, 2, 3, 4)), ("smile-logo", (5, 6, 7, 8)))
    # labels + images + one box query for each chunk of 3 images (3 chunks).
    with django_assert_num_queries(5):
        lines = export_text(iteration, chunk_size=3).splitlines()
    assert len(lines) == 7
    with django_assert_num_queries(3):
        assert len(export_text(iteration, chunk_size=100).splitlines()) == 7


def test_write_manifest_and_validate_export_reuse_the_labels_the_export_loaded(
        iteration, django_assert_num_queries):
    for number in range(3):
        reviewed(iteration, f"s3://b/{number}.jpg", ("aws-logo", (1, 2, 3, 4)), ("smile-logo", (5, 6, 7, 8)))
    # labels + images + boxes, as for the lines alone.
    with django_assert_num_queries(3):
        result = write_manifest(iteration=iteration, out=io.StringIO())
    with django_assert_num_queries(3):
        report = validate_export(iteration=iteration)
    assert (result.lines, result.report.labels, report.lines, report.labels) == (
        3, {"aws-logo": 3, "smile-logo": 3}, 3, {"aws-logo": 3, "smile-logo": 3})


def test_line_formatter_writes_exactly_what_json_dumps_writes():
    import random

    from projects.manifests.export import LineFormatter

    names = {0: "aws-logo", 1: 'quote " and \\ backslash', 2: "café ünïcode", 3: "x" * 255}
    formatter = LineFormatter(class_names=names, job="loupe/logos/v2")
    rng = random.Random(7)
    for case in range(300):
        width, height = rng.randint(64, 4096), rng.randint(64, 4096)
        boxes = [
            (rng.randrange(4), rng.uniform(-20, width), rng.uniform(-20, height), rng.uniform(0.1, 900),
             rng.uniform(0.1, 900), 1 if case % 2 else round(rng.uniform(0, 1), 4))
            for _ in range(rng.randrange(0, 8))
        ]
        source = f"s3://bucket/dir with space/é-{case}.jpg"
        expected = json.dumps(build_line(
            source_ref=source, width=width, height=height, depth=3, boxes=boxes, class_names=names,
            human_annotated=bool(case % 3), creation_date="2026-11-28T10:15:03.123456", job="loupe/logos/v2",
        ))
        text = formatter.text(
            source_ref=source, width=width, height=height, depth=3, boxes=boxes,
            clamped=formatter.clamped(boxes, width, height), human_annotated=bool(case % 3),
            creation_date="2026-11-28T10:15:03.123456",
        )
        assert text == expected
