"""Reading an object-detection attribute: a well-formed one quickly, any other with the same answer
attribute_problem gives (the message of the first thing wrong)."""

import copy
import json
from datetime import UTC, datetime

import pytest

from projects.manifests.lines import (
    Attribute,
    LineError,
    attribute_problem,
    may_carry_rcl_keys,
    parse_creation_date,
    parse_detection_attribute,
    whole_pixels,
)

CLASSES = {"0": "aws-logo", "1": "smile-logo"}


def good_line():
    return {
        "source-ref": "s3://b/1.jpg",
        "bb": {"image_size": [{"width": 1024, "height": 768, "depth": 3}],
               "annotations": [{"class_id": 0, "left": 10, "top": 20, "width": 30, "height": 40},
                               {"class_id": 1, "left": 10.5, "top": 0.49, "width": 29.6, "height": 1}]},
        "bb-metadata": {"objects": [{"confidence": 0.5}, {"confidence": 1}], "class-map": dict(CLASSES),
                        "type": "groundtruth/object-detection", "human-annotated": "yes",
                        "creation-date": "2026-11-28T10:15:03.123456"},
    }


def reference(obj, name):
    """What the attribute reads as, by the rules written out once: attribute_problem, then the boxes."""
    problem = attribute_problem(obj, name)
    if problem:
        return f"{name}: {problem}"
    body, metadata = obj[name], obj[name + "-metadata"]
    size = body["image_size"][0]
    return Attribute(
        name, metadata["human-annotated"] == "yes", parse_creation_date(metadata["creation-date"]),
        (size["width"], size["height"], size["depth"]),
        [(metadata["class-map"][str(box["class_id"])], *whole_pixels(box), entry["confidence"])
         for box, entry in zip(body["annotations"], metadata["objects"], strict=True)])


def read(obj, name):
    try:
        return parse_detection_attribute(obj, name)
    except LineError as error:
        return str(error)


ODD_VALUES = [None, True, False, 0, -1, 1, 0.5, -0.0, 1e7, 10**400, float("nan"), float("inf"),
              "12", "", [], {}, [1]]


def path_id(path):
    return "/".join(map(str, path))


PLACES = [
    ("bb", "image_size", 0, "width"), ("bb", "image_size", 0, "height"), ("bb", "image_size", 0, "depth"),
    ("bb", "image_size", 0), ("bb", "image_size"), ("bb", "annotations"),
    ("bb", "annotations", 1), ("bb", "annotations", 1, "left"), ("bb", "annotations", 1, "top"),
    ("bb", "annotations", 0, "width"), ("bb", "annotations", 0, "height"),
    ("bb", "annotations", 0, "class_id"),
    ("bb-metadata", "objects"), ("bb-metadata", "objects", 0), ("bb-metadata", "objects", 1, "confidence"),
    ("bb-metadata", "class-map"), ("bb-metadata", "class-map", "1"), ("bb-metadata", "human-annotated"),
    ("bb-metadata", "creation-date"), ("bb-metadata", "type"), ("bb",), ("bb-metadata",),
]


def replaced(path, value):
    obj = good_line()
    *parents, last = path
    target = obj
    for step in parents:
        target = target[step]
    target[last] = value
    return obj


def removed(path):
    obj = good_line()
    *parents, last = path
    target = obj
    for step in parents:
        target = target[step]
    del target[last]
    return obj


def test_a_well_formed_attribute_reads_as_its_boxes_on_whole_pixels():
    attribute = parse_detection_attribute(good_line(), "bb")
    assert attribute == Attribute("bb", True, datetime(2026, 11, 28, 10, 15, 3, 123456, tzinfo=UTC),
                                  (1024, 768, 3),
                                  [("aws-logo", 10, 20, 30, 40, 0.5), ("smile-logo", 11, 0, 29, 1, 1)])
    assert [type(value) for value in attribute.boxes[1][1:5]] == [int, int, int, int]


@pytest.mark.parametrize("path", PLACES, ids=path_id)
@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda value: repr(value)[:12])
def test_any_value_anywhere_reads_as_attribute_problem_says(path, value):
    obj = replaced(path, copy.deepcopy(value))
    assert read(obj, "bb") == reference(obj, "bb")


@pytest.mark.parametrize("path", [place for place in PLACES if place[-1] != 0], ids=path_id)
def test_any_part_missing_reads_as_attribute_problem_says(path):
    obj = removed(path)
    assert read(obj, "bb") == reference(obj, "bb")


@pytest.mark.parametrize("change", [
    lambda obj: obj["bb-metadata"]["objects"].pop(),
    lambda obj: obj["bb"]["annotations"].append(
        {"class_id": 2, "left": 1, "top": 1, "width": 1, "height": 1}),
    lambda obj: obj["bb"]["image_size"].append({"width": 1, "height": 1, "depth": 1}),
    lambda obj: obj["bb-metadata"].update({"human-annotated": "no"}),
    lambda obj: obj["bb-metadata"].update({"creation-date": "2026-02-30T10:00:00"}),
    lambda obj: obj["bb-metadata"].update({"creation-date": "2026-11-28T10:15:03+02:00"}),
    lambda obj: obj["bb"]["image_size"][0].update({"width": 1_000_001}),
    lambda obj: obj["bb"]["annotations"][0].update({"left": -1_000_000, "width": 1_000_000}),
    lambda obj: obj["bb"]["annotations"][0].update({"left": -1_000_000.5}),
    lambda obj: obj["bb"]["annotations"][0].update({"class_id": 7}),
    lambda obj: obj["bb-metadata"].update({"class-map": {"0": "aws-logo", "1": 5}}),
])
def test_other_changes_read_as_attribute_problem_says(change):
    obj = good_line()
    change(obj)
    assert read(obj, "bb") == reference(obj, "bb")


def test_a_json_round_trip_reads_the_same():
    obj = json.loads(json.dumps(good_line()))
    assert read(obj, "bb") == reference(obj, "bb")


@pytest.mark.parametrize(("text", "suspect"), [
    ('{"source-ref": "s3://b/1.jpg"}', False),
    ('{"source-ref": "s3://b/1.jpg", "errors": []}', True),
    ('{"source-ref": "s3://b/1.jpg", "cl-metadata": {}}', True),
    # "\u0065rrors" is "errors" once parsed: escapes make a line suspect.
    ('{"source-ref": "s3://b/1.jpg", "\\u0065rrors": []}', True),
])
def test_only_lines_that_cannot_carry_rekognitions_keys_skip_stripping(text, suspect):
    assert may_carry_rcl_keys(text) is suspect
