import json
from datetime import UTC, datetime, timedelta

import pytest

from projects.manifests.export import iter_manifest_lines
from projects.manifests.importing import import_manifest
from projects.models import Image, ModelVersion, Proposal
from reviewer.editor.reviews import StaleReview, submit_review
from reviewer.models import Box
from tests.factories import make_box, make_image, make_iteration, make_project, make_user
from tests.projects.manifests.test_export import SPEC_LINE

pytestmark = pytest.mark.django_db

DATE = "2026-11-28T10:15:03.123456"


@pytest.fixture
def iteration():
    return make_iteration(make_project("logos"), "v1")


def attribute(boxes, class_map, *, human="yes", date=DATE, width=1024, height=768, confidences=None):
    confidences = confidences or [1] * len(boxes)
    body = {
        "image_size": [{"width": width, "height": height, "depth": 3}],
        "annotations": [{"class_id": c, "left": x, "top": y, "width": w, "height": h}
                        for c, x, y, w, h in boxes],
    }
    metadata = {
        "objects": [{"confidence": value} for value in confidences],
        "class-map": class_map, "type": "groundtruth/object-detection", "human-annotated": human,
        "creation-date": date,
    }
    return body, metadata


def manifest_line(source, **attributes):
    obj = {"source-ref": source}
    for name, (body, metadata) in attributes.items():
        obj[name] = body
        obj[name + "-metadata"] = metadata
    return json.dumps(obj)


def boxes_of(image, origin=Box.Origin.IMPORTED):
    return [
        (box.label.name, box.left, box.top, box.width, box.height)
        for box in image.boxes.filter(origin=origin).order_by("id")
    ]


def test_spec_example_imports_as_reviewed_boxes(iteration):
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert (report.imported, report.images_created, report.boxes, report.errors) == (1, 1, 2, [])
    image = iteration.images.get()
    assert (image.source, image.name, image.width, image.height, image.depth, image.format) == (
        "s3://my-bucket/v2/train/img-0007.jpg", "img-0007.jpg", 1024, 768, 3, "JPEG")
    assert image.status == Image.Status.REVIEWED
    assert image.no_objects is False
    assert image.reviewed_at == datetime(2026, 11, 28, 10, 15, 3, 123456, tzinfo=UTC)
    assert boxes_of(image) == [("aws-logo", 120, 88, 310, 140), ("smile-logo", 600, 402, 96, 97)]


def test_class_ids_resolve_through_each_lines_own_class_map(iteration):
    lines = [
        manifest_line("s3://b/1.jpg", bb=attribute([(0, 1, 2, 30, 40)], {"0": "aws-logo"})),
        manifest_line("s3://b/2.jpg", bb=attribute([(0, 1, 2, 30, 40)], {"0": "smile-logo"})),
    ]
    import_manifest(iteration=iteration, lines=lines)
    first, second = iteration.images.order_by("position")
    assert boxes_of(first) == [("aws-logo", 1, 2, 30, 40)]
    assert boxes_of(second) == [("smile-logo", 1, 2, 30, 40)]


def test_float_pixel_boxes_are_rounded_half_up_on_their_edges_and_clipped_to_the_frame(iteration):
    body, metadata = attribute([(0, 10.25, 20.5, 30.75, 40.125), (1, 1000.5, -2.5, 50, 10)],
                               {"0": "aws-logo", "1": "smile-logo"})
    import_manifest(iteration=iteration, lines=[manifest_line("s3://b/f.jpg", **{"bb": (body, metadata)})])
    # Edges 10.25..41.0 and 20.5..60.625 -> 10..41 and 21..61; 1000.5..1050.5 -> 1001..1024 (frame).
    assert boxes_of(iteration.images.get()) == [
        ("aws-logo", 10, 21, 31, 40), ("smile-logo", 1001, 0, 23, 8)]


def test_machine_labels_become_proposals_of_an_imported_model_version(iteration):
    line = manifest_line("s3://b/m.jpg", **{"bounding-box": attribute(
        [(0, 1, 2, 30, 40), (1, 5, 6, 70, 80)], {"0": "aws-logo", "1": "smile-logo"}, human="no",
        confidences=[0.91, 0.4])})
    report = import_manifest(iteration=iteration, lines=[line])
    assert (report.imported, report.boxes, report.proposals) == (1, 0, 2)
    image = iteration.images.get()
    assert image.status == Image.Status.PENDING
    model = ModelVersion.objects.get()
    assert (model.name, model.kind) == ("imported:v1:bounding-box", ModelVersion.Kind.IMPORTED)
    iteration.refresh_from_db()
    assert iteration.shown_model == model
    proposals = [(p.label.name, p.left, p.top, p.width, p.height, p.confidence)
                 for p in Proposal.objects.order_by("-confidence")]
    assert proposals == [("aws-logo", 1, 2, 30, 40, 91.0), ("smile-logo", 5, 6, 70, 80, 40.0)]


def test_trusted_machine_labels_become_reviewed_boxes(iteration):
    line = manifest_line("s3://b/m.jpg", **{"bounding-box": attribute(
        [(0, 1, 2, 30, 40)], {"0": "aws-logo"}, human="no", confidences=[0.91])})
    report = import_manifest(iteration=iteration, lines=[line], trust_machine_labels=True)
    assert (report.boxes, report.proposals) == (1, 0)
    image = iteration.images.get()
    assert image.status == Image.Status.REVIEWED
    assert boxes_of(image) == [("aws-logo", 1, 2, 30, 40)]


def test_ground_truth_adjustment_output_keeps_truth_and_model_boxes_apart(iteration):
    line = manifest_line(
        "s3://b/adj.jpg",
        **{"bounding-box": attribute([(0, 1, 2, 30, 40)], {"0": "aws-logo"}, human="no", confidences=[0.8]),
           "adjusted": attribute([(0, 3, 4, 30, 40), (1, 9, 9, 9, 9)], {"0": "aws-logo", "1": "smile-logo"},
                                 date="2026-11-29T08:00:00.000000")},
    )
    report = import_manifest(iteration=iteration, lines=[line])
    image = iteration.images.get()
    assert boxes_of(image) == [("aws-logo", 3, 4, 30, 40), ("smile-logo", 9, 9, 9, 9)]
    assert list(Proposal.objects.values_list("left", "confidence")) == [(1.0, 80.0)]
    assert report.warnings == []


def test_the_newest_human_attribute_wins_and_the_others_are_reported(iteration):
    line = manifest_line(
        "s3://b/two.jpg",
        **{"first": attribute([(0, 1, 1, 10, 10)], {"0": "aws-logo"}, date="2026-11-29T08:00:00"),
           "second": attribute([(0, 2, 2, 10, 10)], {"0": "aws-logo"}, date="2026-11-30T08:00:00")},
    )
    report = import_manifest(iteration=iteration, lines=[line])
    assert boxes_of(iteration.images.get()) == [("aws-logo", 2, 2, 10, 10)]
    assert report.warnings == [(1, "attribute 'first' superseded by the newer 'second'")]


def test_classification_and_verification_attributes_are_ignored_with_warnings(iteration):
    obj = json.loads(json.dumps(SPEC_LINE))
    obj["class"] = 0
    obj["class-metadata"] = {"class-name": "aws-logo", "type": "groundtruth/image-classification"}
    obj["verify"] = 1
    obj["verify-metadata"] = {"type": "groundtruth/label-verification"}
    only_classification = {"source-ref": "s3://b/c.jpg", "class": 0,
                           "class-metadata": {"type": "groundtruth/image-classification"}}
    report = import_manifest(iteration=iteration, lines=[json.dumps(obj), json.dumps(only_classification)])
    assert report.warnings == [
        (1, "ignored attribute 'class' (groundtruth/image-classification): not used for object detection"),
        (1, "ignored attribute 'verify' (groundtruth/label-verification): not used for object detection"),
        (2, "ignored attribute 'class' (groundtruth/image-classification): not used for object detection"),
    ]
    assert (report.imported, report.errors, iteration.images.count()) == (1, [], 1)


def test_rekognition_keys_are_stripped(iteration):
    obj = json.loads(json.dumps(SPEC_LINE))
    obj.update({"errors": [{"code": "ERROR_X"}], "warnings": [], "cl-errors": [], "cl-metadata": {"x": 1}})
    report = import_manifest(iteration=iteration, lines=[json.dumps(obj)])
    assert (report.imported, report.errors, report.warnings) == (1, [], [])


def test_unknown_labels_reject_the_line_unless_created(iteration):
    line = manifest_line("s3://b/n.jpg", **{"bb": attribute([(0, 1, 1, 10, 10), (1, 2, 2, 10, 10)],
                                                            {"0": "aws-logo", "1": "new-logo"})})
    report = import_manifest(iteration=iteration, lines=[line])
    assert report.errors == [(1, "label(s) new-logo not in project 'logos': add them in the project or "
                                 "import with --create-labels")]
    # The line is atomic: neither its image nor its first box was kept.
    assert (iteration.images.count(), Box.objects.count()) == (0, 0)
    report = import_manifest(iteration=iteration, lines=[line], create_labels=True)
    assert (report.labels_created, report.boxes) == (["new-logo"], 2)
    assert list(iteration.project.labels.values_list("name", "order")) == [
        ("aws-logo", 0), ("smile-logo", 1), ("new-logo", 2)]


def test_malformed_lines_are_reported_with_numbers_and_the_rest_imports(iteration):
    bad_objects = json.loads(json.dumps(SPEC_LINE))
    bad_objects["source-ref"] = "s3://b/bad.jpg"
    bad_objects["bounding-box-metadata"]["objects"].pop()
    lines = ["{not json", "", json.dumps(bad_objects), json.dumps({"no": "source"}),
             json.dumps({"source-ref": "s3://b/x.jpg"}), json.dumps(SPEC_LINE)]
    report = import_manifest(iteration=iteration, lines=lines)
    assert [number for number, _ in report.errors] == [1, 3, 4, 5]
    assert report.errors[0][1].startswith("not JSON")
    assert report.errors[1:] == [
        (3, "bounding-box: objects has 1 entries for 2 annotations"),
        (4, "no source-ref: Loupe imports images by their address"),
        (5, "no object-detection attribute (no '<name>' with '<name>-metadata')"),
    ]
    assert (report.lines, report.imported) == (5, 1)
    assert list(iteration.images.values_list("source", flat=True)) == ["s3://my-bucket/v2/train/img-0007.jpg"]


def test_reimport_is_idempotent(iteration):
    lines = [json.dumps(SPEC_LINE),
             manifest_line("s3://b/m.jpg", **{"bb": attribute([(0, 1, 2, 30, 40)], {"0": "aws-logo"},
                                                              human="no", confidences=[0.5])})]
    import_manifest(iteration=iteration, lines=lines)
    report = import_manifest(iteration=iteration, lines=lines)
    assert (report.imported, report.images_created) == (2, 0)
    assert (iteration.images.count(), Box.objects.count(), Proposal.objects.count()) == (2, 2, 1)
    assert ModelVersion.objects.count() == 1


def test_images_reviewed_in_loupe_keep_their_review(iteration):
    image = make_image(iteration, source=SPEC_LINE["source-ref"], status=Image.Status.REVIEWED)
    make_box(image, "aws-logo", (5, 5, 50, 50), origin=Box.Origin.ADDED, reviewer=make_user())
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert report.warnings == [(1, f"{image.source} was already reviewed in Loupe: kept that review")]
    assert boxes_of(image, Box.Origin.ADDED) == [("aws-logo", 5, 5, 50, 50)]
    assert boxes_of(image) == []


def test_an_image_a_person_marked_empty_keeps_its_review(iteration):
    person = make_user()
    when = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    image = make_image(iteration, source=SPEC_LINE["source-ref"], status=Image.Status.REVIEWED,
                       no_objects=True, reviewed_by=person, reviewed_at=when, version=3)
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert report.warnings == [(1, f"{image.source} was already reviewed in Loupe: kept that review")]
    image.refresh_from_db()
    assert (image.status, image.no_objects, image.reviewed_by, image.reviewed_at, image.version) == (
        Image.Status.REVIEWED, True, person, when, 3)
    assert image.boxes.count() == 0


def test_imported_truth_takes_a_new_version_so_an_open_review_page_is_stale(iteration):
    image = make_image(iteration, source=SPEC_LINE["source-ref"], version=4)
    opened = Image.objects.get(pk=image.pk)
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert (report.imported, report.boxes, report.warnings) == (1, 2, [])
    image.refresh_from_db()
    assert (image.version, image.status, image.no_objects) == (5, Image.Status.REVIEWED, False)
    # The review page opened before the import submits version 4: refused, the import's boxes stay.
    with pytest.raises(StaleReview):
        submit_review(image=opened, reviewer=make_user(), version=4, boxes=[], no_objects=True)
    assert boxes_of(image) == [("aws-logo", 120, 88, 310, 140), ("smile-logo", 600, 402, 96, 97)]


def test_reimporting_the_same_truth_leaves_the_version_alone(iteration):
    import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert (report.imported, report.boxes) == (1, 2)
    assert iteration.images.get().version == 1
    changed = json.loads(json.dumps(SPEC_LINE))
    changed["bounding-box"]["annotations"][0]["left"] = 121
    import_manifest(iteration=iteration, lines=[json.dumps(changed)])
    image = iteration.images.get()
    assert (image.version, boxes_of(image)[0]) == (2, ("aws-logo", 121, 88, 310, 140))


def test_an_image_a_reviewer_holds_open_is_skipped_with_a_warning(iteration):
    held_until = datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC)
    image = make_image(iteration, source=SPEC_LINE["source-ref"], leased_by=make_user(),
                       lease_expires_at=held_until)
    machine = manifest_line(SPEC_LINE["source-ref"], bb=attribute([(0, 1, 2, 30, 40)], {"0": "aws-logo"},
                                                                  human="no", confidences=[0.5]))
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE), machine])
    message = (f"{image.source} is open for review in Loupe (held until 2999-01-02 03:04:05 UTC): "
               "skipped; import again later")
    assert report.warnings == [(1, message), (2, message)]
    assert (report.lines, report.imported, report.boxes, report.proposals) == (2, 0, 0, 0)
    image.refresh_from_db()
    assert (image.status, image.version, image.boxes.count(), Proposal.objects.count()) == (
        Image.Status.PENDING, 0, 0, 0)


def test_an_expired_hold_does_not_stop_the_import(iteration):
    image = make_image(iteration, source=SPEC_LINE["source-ref"], leased_by=make_user(),
                       lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert (report.imported, report.boxes, report.warnings) == (1, 2, [])
    image.refresh_from_db()
    assert (image.status, image.version) == (Image.Status.REVIEWED, 1)


def test_a_size_that_contradicts_the_known_image_is_an_error(iteration):
    make_image(iteration, source=SPEC_LINE["source-ref"], width=800, height=600)
    report = import_manifest(iteration=iteration, lines=[json.dumps(SPEC_LINE)])
    assert report.errors == [(1, "image_size 1024x768 differs from the image's 800x600 in Loupe; the boxes "
                                 "would land in the wrong place")]


def test_empty_human_lines_mark_the_image_verified_empty(iteration):
    line = manifest_line("s3://b/e.jpg", **{"bb": attribute([], {})})
    import_manifest(iteration=iteration, lines=[line])
    image = iteration.images.get()
    assert (image.status, image.no_objects) == (Image.Status.REVIEWED, True)


def test_round_trip_gives_the_same_images_boxes_and_labels(iteration):
    project = iteration.project
    when = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    first = make_image(iteration, source="s3://b/1.jpg", status=Image.Status.REVIEWED, reviewed_at=when)
    make_box(first, "aws-logo", (10, 20, 30, 40))
    make_box(first, "smile-logo", (0, 0, 1024, 768))
    second = make_image(iteration, source="s3://b/2.jpg", status=Image.Status.REVIEWED, reviewed_at=when)
    make_box(second, "smile-logo", (7, 8, 9, 10))
    make_image(iteration, source="s3://b/3.jpg", status=Image.Status.REVIEWED, reviewed_at=when,
               no_objects=True)
    exported = list(iter_manifest_lines(iteration=iteration))
    copy = make_iteration(project, "copy")
    report = import_manifest(iteration=copy, lines=exported)
    assert (report.imported, report.errors) == (3, [])
    again = list(iter_manifest_lines(iteration=copy))
    assert [text.replace("loupe/logos/copy", "loupe/logos/v1") for text in again] == exported


def test_published_local_images_match_back_to_the_local_image(iteration):
    project = iteration.project
    project.published_images_uri = "s3://pub/logos/v1/"
    project.save()
    local = make_image(iteration, source="images/logos/v1/a.jpg", status=Image.Status.REVIEWED,
                       reviewed_at=datetime(2026, 11, 28, tzinfo=UTC))
    make_box(local, "aws-logo", (1, 2, 3, 4))
    exported = list(iter_manifest_lines(iteration=iteration))
    assert json.loads(exported[0])["source-ref"] == "s3://pub/logos/v1/a.jpg"
    report = import_manifest(iteration=iteration, lines=exported)
    assert (report.images_created, iteration.images.count()) == (0, 1)
    assert boxes_of(local) == [("aws-logo", 1, 2, 3, 4)]
