"""Manifest lines as AWS really writes them: Rekognition's own entries, Ground Truth's job output,
AWS's COCO converter, and the rules Rekognition applies to them (issue 11, points 1-7)."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from projects.manifests.checks import TEST, ManifestValidator, validate_lines
from projects.manifests.importing import import_manifest
from projects.manifests.lines import LineError, format_creation_date, parse_creation_date
from projects.models import Image, Proposal
from reviewer.models import Box
from tests.factories import make_image, make_iteration, make_project

# A line as Rekognition hands it back (ListDatasetEntries, validation manifests): a Z date, and
# errors at the line, the attribute, an annotation and the metadata. The 1x1 box is flagged.
RCL_LINE = (
    '{"source-ref":"s3://bucket/rcl/img-1.jpg","bounding-box":{"image_size":[{"width":640,'
    '"height":480,"depth":3}],"annotations":[{"class_id":0,"top":100,"left":120,"width":200,'
    '"height":150},{"class_id":0,"top":10,"left":10,"width":1,"height":1,"errors":[{"code":'
    '"ERROR_BOUNDING_BOX_TOO_SMALL","message":"The bounding box is too small."}]}],"errors":[]},'
    '"bounding-box-metadata":{"objects":[{"confidence":1},{"confidence":1}],"class-map":{"0":'
    '"aws-logo"},"type":"groundtruth/object-detection","human-annotated":"yes","creation-date":'
    '"2021-06-22T10:11:18.006Z","job-name":"labeling-job/bounding-box","errors":[]},'
    '"cl-metadata":{"is_labeled":true},"errors":[]}'
)
# The same kind of entry without any flagged box.
RCL_CLEAN_LINE = (
    '{"source-ref":"s3://bucket/rcl/img-2.jpg","bounding-box":{"image_size":[{"width":640,'
    '"height":480,"depth":3}],"annotations":[{"class_id":0,"top":20,"left":30,"width":100,'
    '"height":80}],"errors":[]},"bounding-box-metadata":{"objects":[{"confidence":1}],'
    '"class-map":{"0":"aws-logo"},"type":"groundtruth/object-detection","human-annotated":"yes",'
    '"creation-date":"2021-06-22T10:11:18.006Z","job-name":"labeling-job/bounding-box",'
    '"errors":[]},"cl-metadata":{"is_labeled":true},"errors":[]}'
)
# Ground Truth bounding-box adjustment output: the input attribute (the model's boxes) and the
# job's attribute. The second data object failed: its metadata has a failure-reason, no body.
GT_ADJUSTED_LINE = (
    '{"source-ref":"s3://bucket/gt/img-1.jpg","bounding-box":{"image_size":[{"width":640,'
    '"height":480,"depth":3}],"annotations":[{"class_id":0,"left":100,"top":90,"width":60,'
    '"height":40}]},"bounding-box-metadata":{"objects":[{"confidence":0.81}],"class-map":{"0":'
    '"aws-logo"},"type":"groundtruth/object-detection","human-annotated":"no","creation-date":'
    '"2026-11-20T09:00:00.000000","job-name":"loupe/logos/v2"},"adjusted":{"image_size":[{"width":'
    '640,"height":480,"depth":3}],"annotations":[{"class_id":0,"left":104,"top":92,"width":58,'
    '"height":41}]},"adjusted-metadata":{"objects":[{"confidence":0.94}],"class-map":{"0":'
    '"aws-logo"},"type":"groundtruth/object-detection","human-annotated":"yes","creation-date":'
    '"2026-11-29T14:02:11.834129","job-name":"labeling-job/adjusted","adjustment-status":'
    '"adjusted"}}'
)
GT_FAILED_LINE = (
    '{"source-ref":"s3://bucket/gt/img-2.jpg","bounding-box":{"image_size":[{"width":640,'
    '"height":480,"depth":3}],"annotations":[{"class_id":0,"left":10,"top":10,"width":60,'
    '"height":40}]},"bounding-box-metadata":{"objects":[{"confidence":0.55}],"class-map":{"0":'
    '"aws-logo"},"type":"groundtruth/object-detection","human-annotated":"no","creation-date":'
    '"2026-11-20T09:00:00.000000","job-name":"loupe/logos/v2"},"adjusted-metadata":'
    '{"failure-reason":"ClientError: The worker response did not contain a valid annotation.",'
    '"job-name":"labeling-job/adjusted"}}'
)
# AWS's COCO-to-Rekognition sample writes float pixels and whole-second dates.
COCO_LINE = (
    '{"source-ref": "s3://bucket/coco/000000242287.jpg", "bounding-box": {"image_size": [{"width": '
    '640, "height": 426, "depth": 3}], "annotations": [{"class_id": 1, "top": 55.36, "left": '
    '161.5, "width": 96.74, "height": 135.2}]}, "bounding-box-metadata": {"objects": '
    '[{"confidence": 1}], "class-map": {"1": "smile-logo"}, "type": "groundtruth/object-detection", '
    '"human-annotated": "yes", "creation-date": "2020-03-14T18:48:04", "job-name": "my job"}}'
)


def detection_line(source, boxes, *, names=None, width=640, height=480, date="2026-11-28T10:15:03.123456",
                   human="yes"):
    names = names or {0: "aws-logo", 1: "smile-logo"}
    used = sorted({box[0] for box in boxes})
    return json.dumps({
        "source-ref": source,
        "bounding-box": {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": [{"class_id": c, "left": x, "top": y, "width": w, "height": h}
                            for c, x, y, w, h in boxes],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in boxes], "class-map": {str(c): names[c] for c in used},
            "type": "groundtruth/object-detection", "human-annotated": human, "creation-date": date,
        },
    })


def good(count, prefix="good"):
    return [detection_line(f"s3://bucket/{prefix}-{n}.jpg", [(n % 2, 10, 10, 100, 50)]) for n in range(count)]


def check_file(tmp_path, lines, *extra, name="m.manifest"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    try:
        call_command("check_manifest", str(path), *extra, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return False, out.getvalue(), str(error)
    return True, out.getvalue(), ""


def codes(report):
    return [i.code for i in report.errors], [i.code for i in report.warnings]


def issue(report, code):
    return next(i for i in report.errors + report.warnings if i.code == code)


# 1. Dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-06-22T10:11:18.006Z", datetime(2021, 6, 22, 10, 11, 18, 6000, tzinfo=UTC)),
        ("2018-10-18T22:18:13.527256", datetime(2018, 10, 18, 22, 18, 13, 527256, tzinfo=UTC)),
        ("2020-03-14T18:48:04", datetime(2020, 3, 14, 18, 48, 4, tzinfo=UTC)),
        ("2021-06-22T12:11:18.006+02:00", datetime(2021, 6, 22, 10, 11, 18, 6000, tzinfo=UTC)),
        ("2021-06-22T05:41:18-0430", datetime(2021, 6, 22, 10, 11, 18, tzinfo=UTC)),
        ("2021-06-22 10:11:18.006", datetime(2021, 6, 22, 10, 11, 18, 6000, tzinfo=UTC)),
        ("2021-06-22T10:11:18.123456789Z", datetime(2021, 6, 22, 10, 11, 18, 123456, tzinfo=UTC)),
    ],
)
def test_every_iso_8601_form_aws_writes_is_read_as_utc(text, expected):
    assert parse_creation_date(text) == expected


@pytest.mark.parametrize("text", ["22/06/2021 10:11", "2021-06-22", "2021-13-22T10:11:18", 20210622, None])
def test_a_date_that_is_no_iso_8601_date_time_is_a_line_error(text):
    with pytest.raises(LineError):
        parse_creation_date(text)


def test_dates_are_written_in_ground_truths_style():
    assert format_creation_date(parse_creation_date("2021-06-22T12:11:18.006+02:00")) == \
        "2021-06-22T10:11:18.006000"


def test_check_manifest_accepts_rekognitions_own_lines(tmp_path):
    ok, out, _ = check_file(tmp_path, [RCL_LINE, RCL_CLEAN_LINE, *good(3)])
    assert ok
    assert "malformed" not in out
    assert "WARNING [flagged-by-rekognition]" in out
    assert "  line 1 (s3://bucket/rcl/img-1.jpg): bounding-box box 1: ERROR_BOUNDING_BOX_TOO_SMALL" in out
    assert out.splitlines()[-1] == "OK: Rekognition will accept this manifest."


@pytest.mark.django_db
def test_import_manifest_reads_a_z_date_and_strips_nested_errors(tmp_path):
    iteration = make_iteration(make_project("logos"), "v1")
    report = import_manifest(iteration=iteration, lines=[RCL_CLEAN_LINE])
    assert (report.imported, report.boxes, report.errors, report.warnings) == (1, 1, [], [])
    image = iteration.images.get()
    assert image.status == Image.Status.REVIEWED
    assert image.reviewed_at == datetime(2021, 6, 22, 10, 11, 18, 6000, tzinfo=UTC)
    assert list(image.boxes.values_list("left", "top", "width", "height")) == [(30, 20, 100, 80)]


# 5. What Rekognition hands back


@pytest.mark.django_db
def test_a_box_rekognition_flagged_is_reported_and_not_imported_as_truth():
    iteration = make_iteration(make_project("logos"), "v1")
    report = import_manifest(iteration=iteration, lines=[RCL_LINE])
    assert (report.imported, report.boxes, report.proposals, report.errors) == (1, 0, 2, [])
    assert report.warnings == [(
        1, "bounding-box box 1: Rekognition flagged it (ERROR_BOUNDING_BOX_TOO_SMALL); the attribute's "
           "boxes are imported as proposals to review, not as truth")]
    image = iteration.images.get()
    assert image.status == Image.Status.PENDING
    assert Box.objects.count() == 0
    assert sorted(Proposal.objects.values_list("left", "top", "width", "height", "confidence")) == [
        (10, 10, 1, 1, 100.0), (120, 100, 200, 150, 100.0)]


def test_rekognitions_keys_are_stripped_at_every_level_without_touching_the_input():
    obj = json.loads(RCL_LINE)
    before = json.dumps(obj)
    report = validate_lines([RCL_LINE])
    assert json.dumps(obj) == before
    assert report.boxes == 2
    assert codes(report) == ([], ["tiny-box", "flagged-by-rekognition", "one-label"])


# 6. Ground Truth failures


@pytest.mark.django_db
def test_a_failed_ground_truth_data_object_is_reported_with_its_reason(tmp_path):
    make_iteration(make_project("logos"), "v2")
    path = tmp_path / "output.manifest"
    path.write_text(GT_ADJUSTED_LINE + "\n" + GT_FAILED_LINE + "\n")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_manifest", "logos/v2", str(path), stdout=out, stderr=io.StringIO())
    assert str(caught.value) == (
        f"1 data object(s) of {path} failed in Ground Truth (see above): label those images again")
    assert ("line 2: failed: s3://bucket/gt/img-2.jpg: Ground Truth job attribute 'adjusted' failed: "
            "ClientError: The worker response did not contain a valid annotation.") in out.getvalue()
    assert ("2 of 2 lines imported (2 new images, 1 boxes, 2 proposals), 0 rejected, "
            "1 failed data objects, 0 warnings.") in out.getvalue()
    adjusted = Image.objects.get(source="s3://bucket/gt/img-1.jpg")
    assert adjusted.status == Image.Status.REVIEWED
    assert list(adjusted.boxes.values_list("left", "top", "width", "height")) == [(104, 92, 58, 41)]
    failed = Image.objects.get(source="s3://bucket/gt/img-2.jpg")
    assert failed.status == Image.Status.PENDING
    assert list(failed.proposals.values_list("left", "confidence")) == [(10, 55.0)]


def test_check_manifest_reports_a_failed_data_object(tmp_path):
    ok, out, _ = check_file(tmp_path, [GT_ADJUSTED_LINE, GT_FAILED_LINE, *good(3)])
    assert ok
    assert ("  line 2 (s3://bucket/gt/img-2.jpg): adjusted: ClientError: The worker response did not "
            "contain a valid annotation.") in out


# 2. Float pixels


def test_check_manifest_accepts_float_pixels_from_the_coco_converter(tmp_path):
    ok, out, _ = check_file(tmp_path, [COCO_LINE, *good(2)])
    assert ok, out
    assert out.splitlines()[0] == "3 lines, 1,262 bytes, 3 boxes, 2 labels, 0 empty images, 0 invalid lines"


@pytest.mark.django_db
def test_float_pixels_are_imported_on_whole_pixels_by_the_one_rounding_rule():
    iteration = make_iteration(make_project("logos"), "v1")
    report = import_manifest(iteration=iteration, lines=[COCO_LINE])
    assert (report.imported, report.errors) == (1, [])
    image = iteration.images.get()
    assert image.reviewed_at == datetime(2020, 3, 14, 18, 48, 4, tzinfo=UTC)
    # Edges 161.5..258.24 and 55.36..190.56 -> 162..258 and 55..191 (half up).
    assert list(image.boxes.values_list("left", "top", "width", "height")) == [(162, 55, 96, 136)]


# 3. One label is enough


def test_a_one_label_manifest_is_accepted_with_a_note(tmp_path):
    lines = [detection_line(f"s3://bucket/one-{n}.jpg", [(0, 10, 10, 100, 50)]) for n in range(3)]
    ok, out, _ = check_file(tmp_path, lines)
    assert ok
    assert ("WARNING [one-label] one label only: Rekognition's quotas page allows it for object "
            "detection, though one of its error pages asks for two: whole manifest") in out
    assert "  label with boxes: aws-logo" in out


@pytest.mark.django_db
def test_a_one_label_iteration_exports_and_splits(tmp_path):
    project = make_project("solo", labels=("aws-logo",))
    iteration = make_iteration(project, "v1")
    for n in range(10):
        image = make_image(iteration, source=f"s3://bucket/solo/{n}.jpg", status=Image.Status.REVIEWED,
                           reviewed_at=datetime(2026, 11, 28, tzinfo=UTC))
        Box.objects.create(image=image, label=project.labels.get(), left=1, top=2, width=30, height=40)
    target = tmp_path / "solo.manifest"
    out = io.StringIO()
    call_command("export_manifest", "solo/v1", "--output", str(target), "--test-fraction", "0.3",
                 stdout=out, stderr=io.StringIO())
    train, test = tmp_path / "solo-train.manifest", tmp_path / "solo-test.manifest"
    assert len(train.read_text().splitlines()) + len(test.read_text().splitlines()) == 10
    assert test.read_text() and train.read_text()
    assert "warning [one-label]" in out.getvalue()


# 4. Rules that were missing


def test_a_line_whose_every_box_is_off_frame_is_invalid(tmp_path):
    off = detection_line("s3://bucket/off.jpg", [(0, 630, 10, 20, 20), (1, -5, 470, 10, 20)])
    report = validate_lines([off, *good(4)])
    assert report.invalid_lines == 1
    assert codes(report) == ([], ["no-valid-boxes", "box-outside"])
    assert issue(report, "no-valid-boxes").examples == ["line 1 (s3://bucket/off.jpg)"]
    # Two such lines in five are over Rekognition's 20%.
    ok, out, error = check_file(tmp_path, [off, off.replace("off.jpg", "off2.jpg"), *good(3)])
    assert not ok
    assert "ERROR [too-many-invalid]" in out
    assert error == "1 error(s) (too-many-invalid): Rekognition would refuse this manifest"


def test_a_line_whose_every_box_is_too_small_is_invalid():
    tiny = detection_line("s3://bucket/tiny.jpg", [(0, 10, 10, 1, 30)])
    report = validate_lines([tiny, *good(4)])
    assert report.invalid_lines == 1
    assert codes(report) == ([], ["no-valid-boxes", "tiny-box"])


def test_a_line_with_one_valid_box_left_stays_valid():
    mixed = detection_line("s3://bucket/mixed.jpg", [(0, 630, 10, 20, 20), (1, 5, 5, 20, 20)])
    report = validate_lines([mixed])
    assert report.invalid_lines == 0
    assert codes(report) == ([], ["box-outside"])


def test_blank_lines_count_as_invalid_objects(tmp_path):
    report = validate_lines([good(1)[0], "\n", *good(4, "more")])
    assert (report.lines, report.invalid_lines) == (6, 1)
    assert issue(report, "blank-line").examples == ["line 2"]
    assert report.ok
    ok, out, error = check_file(tmp_path, [good(1)[0], "", "   ", *good(3, "more")])
    assert not ok
    assert error == "1 error(s) (too-many-invalid): Rekognition would refuse this manifest"
    assert "ERROR [too-many-invalid] more than 20% of the lines are invalid" in out
    assert "  2 of 6 lines" in out


@pytest.mark.parametrize(
    ("region", "purpose", "count", "refused"),
    [("ap-south-1", "train", 28_000, False), ("ap-south-1", "train", 28_001, True),
     ("eu-west-2", "test", 7_000, False), ("eu-west-2", "test", 7_001, True),
     ("us-east-1", "test", 7_001, False)],
)
def test_regional_quotas_follow_the_region(region, purpose, count, refused):
    validator = ManifestValidator(check_duplicates=False, region=region, purpose=purpose)
    for n in range(count):
        validator.add_image(source=f"s3://bucket/{n}.jpg", width=640, height=480,
                            boxes=[(n % 2, 1, 1, 20, 20)], class_names={0: "a", 1: "b"}, length=300)
    report = validator.report()
    assert ("regional-quota" in codes(report)[0]) is refused
    if refused:
        limit = 28_000 if purpose == "train" else 7_000
        assert issue(report, "regional-quota").examples == [
            f"{count:,} {purpose} images; {region} allows {limit:,}"]


def test_check_manifest_applies_the_regional_quota_of_the_region_given(tmp_path):
    lines = good(28_001)
    ok, out, error = check_file(tmp_path, lines, "--region", "ap-south-1")
    assert not ok
    assert error == "1 error(s) (regional-quota): Rekognition would refuse this manifest"
    assert "ERROR [regional-quota]" in out
    assert check_file(tmp_path, lines)[0]


@pytest.mark.parametrize(("images", "refused"), [(1_000, False), (1_001, True)])
def test_a_label_on_more_than_1000_test_images_is_refused(images, refused):
    validator = ManifestValidator(check_duplicates=False, purpose=TEST)
    for n in range(images):
        validator.add_image(source=f"s3://bucket/{n}.jpg", width=640, height=480,
                            boxes=[(0, 1, 1, 20, 20), (0, 30, 30, 20, 20)], class_names={0: "a"}, length=300)
    validator.add_image(source="s3://bucket/b.jpg", width=640, height=480, boxes=[(1, 1, 1, 20, 20)],
                        class_names={1: "b"}, length=300)
    report = validator.report()
    assert report.label_images == {"a": images, "b": 1}
    assert ("too-many-test-images" in codes(report)[0]) is refused
    if refused:
        assert issue(report, "too-many-test-images").examples == ["a (1,001 images)"]
    # The same file as a training manifest has no such limit.
    train = ManifestValidator(check_duplicates=False)
    for n in range(images):
        train.add_image(source=f"s3://bucket/{n}.jpg", width=640, height=480,
                        boxes=[(0, 1, 1, 20, 20)], class_names={0: "a"}, length=300)
    assert "too-many-test-images" not in codes(train.report())[0]


def test_labels_and_boxes_are_counted_once_per_line():
    report = validate_lines([GT_ADJUSTED_LINE])
    assert (report.lines, report.boxes, report.labels, report.label_images) == (
        1, 1, {"aws-logo": 1}, {"aws-logo": 1})
    assert issue(report, "several-attributes").examples == [
        "line 1 (s3://bucket/gt/img-1.jpg): bounding-box, adjusted"]


# 7. Unreviewed boxes


@pytest.mark.django_db
def test_include_unreviewed_says_rekognition_trains_on_proposals_like_reviewed_boxes(tmp_path):
    from tests.factories import make_model_version, make_proposal

    project = make_project("logos")
    model = make_model_version(project, "v1")
    iteration = make_iteration(project, "v2", shown_model=model)
    pending = make_image(iteration, source="s3://bucket/v2/pending.jpg")
    make_proposal(pending, "aws-logo", (10, 10, 50, 50), confidence=90.0, model_version=model)
    make_proposal(pending, "smile-logo", (80, 80, 50, 50), confidence=70.0, model_version=model)
    out = io.StringIO()
    call_command("export_manifest", "logos/v2", "--output", str(tmp_path / "m.manifest"),
                 "--include-unreviewed", stdout=out, stderr=io.StringIO())
    assert ("warning [machine-labels] images whose boxes are a model's proposals nobody reviewed "
            "(human-annotated: no): Rekognition ignores confidence and trains on these boxes like "
            "reviewed ones: 2 in 1 image(s)") in out.getvalue()


@pytest.mark.django_db
def test_a_split_export_applies_the_regional_quotas_to_each_half(tmp_path, monkeypatch):
    from projects.manifests import checks

    # Small stand-ins for ap-south-1's 28,000 training and 7,000 test images.
    monkeypatch.setitem(checks.REGIONAL_MAX_IMAGES, "ap-south-1", (8, 3))
    project = make_project("mumbai", region="ap-south-1")
    iteration = make_iteration(project, "v1")
    for n in range(10):
        image = make_image(iteration, source=f"s3://bucket/m/{n}.jpg", status=Image.Status.REVIEWED,
                           reviewed_at=datetime(2026, 11, 28, tzinfo=UTC))
        Box.objects.create(image=image, label=project.labels.get(name="aws-logo"), left=1, top=2,
                           width=30, height=40)
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("export_manifest", "mumbai/v1", "--output", str(tmp_path / "whole.manifest"),
                     stdout=out, stderr=io.StringIO())
    assert "regional-quota" in str(caught.value)
    assert "  10 train images; ap-south-1 allows 8" in out.getvalue()
    call_command("export_manifest", "mumbai/v1", "--output", str(tmp_path / "split.manifest"),
                 "--test-fraction", "0.22", stdout=io.StringIO(), stderr=io.StringIO())
    train = (tmp_path / "split-train.manifest").read_text().splitlines()
    test = (tmp_path / "split-test.manifest").read_text().splitlines()
    assert (len(train), len(test)) == (7, 3)


def test_no_key_rekognition_adds_survives_stripping():
    from projects.manifests.lines import strip_rcl_keys

    obj = json.loads(RCL_LINE)
    obj["bounding-box-metadata"]["objects"][0]["warnings"] = [{"code": "WARNING_X", "message": "x"}]
    clean, flagged = strip_rcl_keys(obj)

    def keys(value):
        if isinstance(value, dict):
            return set(value) | {k for item in value.values() for k in keys(item)}
        if isinstance(value, list):
            return {k for item in value for k in keys(item)}
        return set()

    assert keys(clean) & {"errors", "warnings", "cl-errors", "cl-metadata"} == set()
    assert [(f.attribute, f.index, f.codes) for f in flagged] == [
        ("bounding-box", 1, ("ERROR_BOUNDING_BOX_TOO_SMALL",))]
    assert obj["bounding-box-metadata"]["objects"][0]["warnings"]  # the input is left alone
