import copy
import json

import pytest

from projects import rules
from projects.manifests import checks
from projects.manifests.checks import ManifestValidator, check_split, validate_lines

DATE = "2026-11-28T10:15:03.123456"


def line(source="s3://bucket/a.jpg", boxes=((0, 10, 10, 100, 50),), *, width=1024, height=768,
         names=None, human="yes", attribute="bounding-box"):
    names = names or {0: "aws-logo", 1: "smile-logo"}
    used = {class_id for class_id, *_ in boxes}
    return {
        "source-ref": source,
        attribute: {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": [
                {"class_id": c, "left": x, "top": y, "width": w, "height": h} for c, x, y, w, h in boxes
            ],
        },
        attribute + "-metadata": {
            "objects": [{"confidence": 1} for _ in boxes],
            "class-map": {str(c): names[c] for c in sorted(used)},
            "type": "groundtruth/object-detection",
            "human-annotated": human,
            "creation-date": DATE,
        },
    }


def good_pair():
    return [line("s3://bucket/a.jpg", [(0, 10, 10, 100, 50)]), line("s3://bucket/b.jpg", [(1, 1, 1, 20, 20)])]


def check(*objs):
    return validate_lines([json.dumps(obj) if not isinstance(obj, str) else obj for obj in objs])


def codes(report):
    return [issue.code for issue in report.errors], [issue.code for issue in report.warnings]


def issue(report, code):
    return next(i for i in report.errors + report.warnings if i.code == code)


def test_a_good_manifest_has_no_issues():
    report = check(*good_pair())
    assert codes(report) == ([], [])
    assert report.ok
    assert (report.lines, report.boxes, report.labels) == (2, 2, {"aws-logo": 1, "smile-logo": 1})
    assert report.buckets == {"bucket": 2}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o["bounding-box-metadata"]["objects"].append({"confidence": 1}),
         "objects has 2 entries for 1 annotations"),
        (lambda o: o["bounding-box-metadata"].pop("creation-date"),
         "bounding-box-metadata lacks creation-date"),
        (lambda o: o["bounding-box-metadata"].update({"creation-date": "28/11/2026 10:15"}),
         "creation-date '28/11/2026 10:15' is not an ISO 8601 date and time"),
        (lambda o: o["bounding-box-metadata"].update({"class-map": {"1": "aws-logo"}}),
         "annotation 0: class_id 0 is not in class-map"),
        (lambda o: o["bounding-box"]["image_size"][0].pop("depth"),
         "image_size lacks a positive integer depth up to 1,000,000"),
        (lambda o: o["bounding-box"].update({"image_size": {"width": 1, "height": 1, "depth": 3}}),
         "image_size must be a list of one {width, height, depth}"),
        (lambda o: o["bounding-box-metadata"].update({"human-annotated": "maybe"}),
         'human-annotated must be "yes" or "no"'),
        (lambda o: o["bounding-box-metadata"]["objects"][0].update({"confidence": 97}),
         "objects[0] needs a confidence between 0 and 1"),
        (lambda o: o["bounding-box"]["annotations"][0].update({"left": "10"}),
         "annotation 0: left must be a number of pixels within 1,000,000"),
    ],
)
def test_malformed_lines_are_errors_with_their_line_number(mutate, reason):
    bad = line("s3://bucket/c.jpg", [(0, 10, 10, 100, 50)])
    mutate(bad)
    report = check(*good_pair(), bad)
    # One line in three is invalid: over Rekognition's 20% too.
    assert codes(report)[0] == ["malformed", "too-many-invalid"]
    assert issue(report, "malformed").examples == [f"line 3 (s3://bucket/c.jpg): bounding-box: {reason}"]


def test_a_line_that_is_not_json_is_malformed():
    report = check(*good_pair(), "{not json")
    assert issue(report, "malformed").examples[0].startswith("line 3: not JSON")
    assert report.invalid_lines == 1


def test_long_lines_are_not_refused_since_the_100000_character_limit_is_ground_truths_input_rule():
    long = line("s3://bucket/c.jpg")
    long["note"] = ""
    long["note"] = "x" * (100_001 - len(json.dumps(long)))
    assert len(json.dumps(long)) == 100_001
    assert codes(check(*good_pair(), long)) == ([], [])


def test_duplicate_source_refs_are_errors():
    report = check(*good_pair(), line("s3://bucket/a.jpg", [(1, 1, 1, 20, 20)]))
    assert codes(report)[0] == ["duplicate-source"]
    assert issue(report, "duplicate-source").examples == ["line 3 (s3://bucket/a.jpg)"]


def test_sources_outside_s3_are_errors():
    report = check(*good_pair(), line("/data/c.jpg"))
    assert "not-s3" in codes(report)[0]


def test_mixed_buckets_are_an_error_naming_the_buckets():
    report = check(*good_pair(), line("s3://other/c.jpg"))
    assert codes(report)[0] == ["mixed-buckets"]
    assert issue(report, "mixed-buckets").examples == ["bucket (2), other (1)"]


def test_no_label_with_boxes_is_an_error():
    report = check(line("s3://bucket/a.jpg", []), line("s3://bucket/b.jpg", []))
    assert codes(report) == (["too-few-labels"], ["empty"])
    assert issue(report, "too-few-labels").examples == ["labels with boxes: none"]


@pytest.mark.parametrize(("count", "errors"), [(250, []), (251, ["too-many-labels"])])
def test_more_than_250_labels_is_an_error(count, errors):
    names = {n: f"label-{n}" for n in range(count)}
    lines = [line(f"s3://bucket/{n}.jpg", [(n, 1, 1, 20, 20)], names=names) for n in range(count)]
    report = check(*lines)
    assert len(report.labels) == count
    assert codes(report)[0] == errors


def test_rekognitions_line_limit_is_250000():
    assert rules.MAX_LINES == 250_000


# Counted at a limit of 3 (the rule above pins the real one): 250,000 records take seconds to add.
@pytest.mark.parametrize(("count", "errors"), [(3, []), (4, ["too-many-lines"])])
def test_more_lines_than_the_limit_is_an_error(count, errors, monkeypatch):
    monkeypatch.setattr(checks, "MAX_LINES", 3)
    validator = ManifestValidator(check_duplicates=False)
    obj = line(boxes=[(0, 1, 1, 20, 20), (1, 30, 30, 20, 20)])
    length = len(json.dumps(obj))
    for _ in range(count):
        validator.add_record(obj, length)
    report = validator.report()
    assert report.lines == count
    assert codes(report)[0] == errors


@pytest.mark.parametrize(("size", "errors"), [(1_000_000_000, []), (1_000_000_001, ["too-large"])])
def test_manifests_over_1_gb_are_an_error(size, errors):
    validator = ManifestValidator()
    for number, obj in enumerate(good_pair()):
        text = json.dumps(obj)
        # The second line stands for a huge file: the limit counts bytes with their newlines.
        validator.add_record(obj, len(text), byte_count=size - len(json.dumps(good_pair()[0])) - 2
                             if number else len(text))
    report = validator.report()
    assert report.bytes == size
    assert codes(report)[0] == errors


@pytest.mark.parametrize(("invalid", "errors"), [(2, []), (3, ["too-many-invalid"])])
def test_more_than_20_percent_invalid_lines_is_an_error(invalid, errors):
    lines = [line(f"s3://bucket/{n}.jpg", [(n % 2, 1, 1, 20, 20)]) for n in range(10 - invalid)]
    lines += [line(f"s3://bucket/bad-{n}.gif", [(n % 2, 1, 1, 20, 20)]) for n in range(invalid)]
    report = check(*lines)
    assert report.invalid_lines == invalid
    assert codes(report) == (errors, ["image-format"])


@pytest.mark.parametrize(("boxes", "warned"), [(50, False), (51, True)])
def test_more_than_50_boxes_is_a_warning(boxes, warned):
    many = line("s3://bucket/c.jpg", [(n % 2, n, n, 10, 10) for n in range(boxes)])
    report = check(*good_pair(), *[line(f"s3://bucket/{n}.jpg") for n in range(10)], many)
    assert report.ok
    assert ("too-many-boxes" in codes(report)[1]) is warned
    if warned:
        assert issue(report, "too-many-boxes").examples == ["line 13 (s3://bucket/c.jpg): 51 boxes"]


@pytest.mark.parametrize(
    ("width", "height", "warned"),
    [(64, 64, False), (4096, 4096, False), (63, 500, True), (4097, 500, True), (64, 1280, False),
     (64, 1281, True), (1281, 64, True)],
)
def test_image_dimensions_outside_rekognition_limits_are_warnings(width, height, warned):
    odd = line("s3://bucket/c.jpg", [(0, 0, 0, 10, 10)], width=width, height=height)
    report = check(*good_pair(), *[line(f"s3://bucket/{n}.jpg") for n in range(10)], odd)
    assert report.ok
    assert ("image-dimensions" in codes(report)[1]) is warned


@pytest.mark.parametrize(("source", "warned"), [("s3://bucket/c.PNG", False), ("s3://bucket/c.jpeg", False),
                                                ("s3://bucket/c.gif", True), ("s3://bucket/c", True)])
def test_image_formats_other_than_jpeg_and_png_are_warnings(source, warned):
    report = check(*good_pair(), *[line(f"s3://bucket/{n}.jpg") for n in range(10)], line(source))
    assert ("image-format" in codes(report)[1]) is warned


@pytest.mark.parametrize(("size", "warned"), [(15_000_000, False), (15_000_001, True)])
def test_images_over_15_mb_are_warnings(size, warned):
    validator = ManifestValidator()
    for obj in good_pair():
        validator.add_record(obj, len(json.dumps(obj)), file_size=size, image_format="JPEG")
    assert ("image-too-large" in codes(validator.report())[1]) is warned


@pytest.mark.parametrize(("length", "warned"), [(255, False), (256, True)])
def test_label_names_over_255_characters_are_warnings(length, warned):
    long_name = line("s3://bucket/c.jpg", [(0, 1, 1, 20, 20)], names={0: "x" * length})
    report = check(*good_pair(), *[line(f"s3://bucket/{n}.jpg") for n in range(10)], long_name)
    assert ("label-name-too-long" in codes(report)[1]) is warned


@pytest.mark.parametrize(
    ("width", "height", "box", "warned"),
    [
        (1024, 768, (0, 0, 2, 2), False),
        (1024, 768, (0, 0, 1, 5), True),
        # 2560 px long side: scaled by 0.5, so 2 px become 1 px (dropped) and 3 px become 1.5 px.
        (2560, 1280, (0, 0, 3, 3), False),
        (2560, 1280, (0, 0, 2, 10), True),
    ],
)
def test_boxes_too_small_after_rekognition_scaling_are_warnings(width, height, box, warned):
    small = line("s3://bucket/c.jpg", [(0, *box)], width=width, height=height)
    report = check(*good_pair(), *[line(f"s3://bucket/{n}.jpg") for n in range(10)], small)
    assert report.ok
    assert ("tiny-box" in codes(report)[1]) is warned


@pytest.mark.parametrize(
    ("box", "warned"),
    [((1004, 748, 20, 20), False), ((1005, 748, 20, 20), True), ((1004, 749, 20, 20), True),
     ((-1, 0, 20, 20), True), ((10, 10, 0, 20), True)],
)
def test_boxes_outside_the_frame_are_warnings(box, warned):
    outside = line("s3://bucket/c.jpg", [(0, *box)])
    report = check(*good_pair(), outside)
    assert ("box-outside" in codes(report)[1]) is warned
    if warned:
        assert (issue(report, "box-outside").images, issue(report, "box-outside").items) == (1, 1)


def test_empty_images_are_warnings_with_count_and_examples():
    report = check(*good_pair(), line("s3://bucket/e1.jpg", []), line("s3://bucket/e2.jpg", []))
    assert codes(report) == ([], ["empty"])
    empty = issue(report, "empty")
    assert (empty.images, empty.examples) == (2, ["line 3 (s3://bucket/e1.jpg)", "line 4 (s3://bucket/e2.jpg)"])
    assert report.empty == 2


def test_classification_lines_are_dropped_with_warnings():
    classification = {
        "source-ref": "s3://bucket/c.jpg", "class": 1,
        "class-metadata": {"class-name": "aws-logo", "confidence": 1, "human-annotated": "yes",
                           "type": "groundtruth/image-classification", "creation-date": DATE},
    }
    report = check(*good_pair(), *[line(f"s3://bucket/{n}.jpg") for n in range(10)], classification)
    assert codes(report) == ([], ["not-detection", "ignored-attributes"])
    assert report.invalid_lines == 1


def test_several_detection_attributes_are_a_warning():
    both = line("s3://bucket/c.jpg")
    adjusted = line("s3://bucket/c.jpg", attribute="adjusted")
    both.update({key: value for key, value in adjusted.items() if key != "source-ref"})
    report = check(*good_pair(), both)
    assert codes(report) == ([], ["several-attributes"])
    assert issue(report, "several-attributes").examples == [
        "line 3 (s3://bucket/c.jpg): bounding-box, adjusted"]


def test_report_text_names_errors_and_counts():
    lines = [json.dumps(line("s3://bucket/a.jpg")), json.dumps(line("s3://other/b.jpg", []))]
    size = len(lines[0]) + len(lines[1]) + 2
    text = validate_lines(lines).as_text()
    assert size == 707
    assert text.splitlines() == [
        f"2 lines, {size} bytes, 1 boxes, 1 labels, 1 empty images, 0 invalid lines",
        "  label aws-logo: 1 boxes",
        "ERROR [mixed-buckets] images in more than one bucket: Rekognition needs all of them in one: "
        "whole manifest",
        "  bucket (1), other (1)",
        "WARNING [empty] images verified as empty: kept as a record, ignored for training: 1 line(s)",
        "  line 2 (s3://other/b.jpg)",
        "WARNING [one-label] one label only: Rekognition's quotas page allows it for object detection, "
        "though one of its error pages asks for two: whole manifest",
        "  label with boxes: aws-logo",
        "REFUSED: 1 error(s) must be fixed before Rekognition can train.",
    ]


def test_check_split_refuses_shared_images_and_poor_label_coverage():
    train = [json.dumps(obj) for obj in good_pair()]
    both_labels = line("s3://bucket/t.jpg", [(0, 1, 1, 20, 20), (1, 1, 1, 20, 20)])
    assert check_split(train, [json.dumps(both_labels)]) == []
    # Half the training labels is enough.
    assert check_split(train, [json.dumps(line("s3://bucket/t.jpg"))]) == []
    assert check_split(train, [json.dumps(line("s3://bucket/a.jpg", [(1, 1, 1, 20, 20)]))]) == [
        "1 image(s) in both train and test, e.g. s3://bucket/a.jpg"
    ]
    three = train + [json.dumps(line("s3://bucket/c.jpg", [(2, 1, 1, 20, 20)], names={2: "third"}))]
    assert check_split(three, [json.dumps(line("s3://bucket/t.jpg"))]) == [
        "the test set covers 33% of the training labels; Rekognition needs at least 50%"
    ]


def test_validator_does_not_mutate_its_input():
    obj = line()
    before = copy.deepcopy(obj)
    ManifestValidator().add_record(obj, len(json.dumps(obj)))
    assert obj == before
