"""Issue 15, items 3 and 4: importers report every bad line with its number and go on; exit codes
agree (non-zero when anything was rejected); a UTF-8 BOM is accepted; source-ref is an s3://
address or a path in the iteration's own storage prefix."""

import copy
import io
import json

import pytest
from django.core.management import CommandError, call_command

from projects.manifests.lines import LineError, parse_line
from projects.models import Image, ModelVersion, Proposal
from reviewer.models import Box
from tests.factories import make_image, make_iteration, make_project
from tests.projects.manifests.test_export import SPEC_LINE

pytestmark = pytest.mark.django_db

NESTED = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def iteration():
    project = make_project("logos", labels=("aws-logo", "smile-logo"))
    iteration = make_iteration(project, "v2")
    make_image(iteration, source="s3://photos/v2/0.jpg", width=1024, height=768)
    make_iteration(make_project("other", labels=("aws-logo",)), "v1")
    return iteration


def run(*args):
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return out.getvalue().splitlines(), str(error)
    return out.getvalue().splitlines(), None


def spec(**changes):
    line = copy.deepcopy(SPEC_LINE)
    line.update(changes)
    return line


def with_box(**box):
    line = spec()
    line["bounding-box"]["annotations"][0].update(box)
    return line


def write(tmp_path, lines, *, bom=False, name="in.manifest"):
    path = tmp_path / name
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


@pytest.mark.parametrize(("text", "message"), [
    (NESTED, "nested too deeply"),
    ('{"a": ' + NESTED + "}", "nested too deeply"),
    ("\ufeff{}", None),
    ('{"a": NaN}', "not JSON (NaN is not a number)"),
    ('{"a": -Infinity}', "not JSON (-Infinity is not a number)"),
])
def test_parse_line_is_depth_and_constant_safe(text, message):
    if message is None:
        assert parse_line(text) == {}
        return
    with pytest.raises(LineError) as info:
        parse_line(text)
    assert message in str(info.value)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_creation_dates_that_overflow_in_utc_are_line_errors(text):
    from projects.manifests.lines import parse_creation_date

    with pytest.raises(LineError) as info:
        parse_creation_date(text)
    assert str(info.value) == f"creation-date {text!r} is outside the years 1..9999 in UTC"


def test_import_manifest_reports_hostile_lines_and_goes_on(iteration, tmp_path):
    path = write(tmp_path, [
        with_box(width=10**30),
        NESTED,
        with_box(left=10**400),
        spec(**{"bounding-box": {**SPEC_LINE["bounding-box"], "image_size": [
            {"width": 10**30, "height": 768, "depth": 3}]}}),
        spec(),
    ], bom=True)
    output, error = run("import_manifest", "logos/v2", str(path))
    assert output[:4] == [
        "line 1: error: bounding-box: annotation 0: width must be a number of pixels within 1,000,000",
        "line 2: error: nested too deeply (JSON nested beyond what Loupe reads)",
        "line 3: error: bounding-box: annotation 0: left must be a number of pixels within 1,000,000",
        "line 4: error: bounding-box: image_size lacks a positive integer width up to 1,000,000",
    ]
    assert error == f"4 line(s) of {path} were not imported (see above); fix them and run the import again"
    assert Image.objects.filter(iteration=iteration).count() == 2
    assert Box.objects.count() == 2


def test_check_manifest_reports_a_nested_line(tmp_path):
    path = write(tmp_path, [spec(), NESTED], bom=True)
    output, error = run("check_manifest", str(path))
    assert any("line 2" in line and "nested too deeply" in line for line in output)
    assert error == "2 error(s) (malformed, too-many-invalid): Rekognition would refuse this manifest"


def prediction(**changes):
    line = {"source-ref": "s3://photos/v2/0.jpg",
            "CustomLabels": [{"Name": "aws-logo", "Confidence": 70.0}]}
    line.update(changes)
    return line


def test_import_predictions_reports_hostile_lines_and_goes_on(iteration, tmp_path):
    path = write(tmp_path, [
        prediction(CustomLabels=[{"Name": "aws-logo", "Confidence": 10**400}]),
        prediction(CustomLabels=[{"Name": "aws-logo", "Confidence": 50, "Geometry": {"BoundingBox": {
            "Left": 10**400, "Top": 0, "Width": 0.5, "Height": 0.5}}}]),
        NESTED,
        prediction(),
    ], bom=True, name="p.jsonl")
    output, error = run("import_predictions", "logos/v2", str(path), "--model-version", "batch-1")
    assert output[:3] == [
        "line 1: CustomLabels[0]: Confidence must be a number 0..100",
        "line 2: CustomLabels[0]: invalid box (BoundingBox needs numbers Left, Top, Width, Height)",
        "line 3: nested too deeply (JSON nested beyond what Loupe reads)",
    ]
    assert error == (
        "3 line(s) not imported (see above): 1 images imported with 1 proposals from 4 lines, "
        "3 lines not imported; fix those lines and import them again"
    )
    assert Proposal.objects.count() == 1


def test_import_predictions_with_nothing_good_leaves_no_model_version(iteration, tmp_path):
    path = write(tmp_path, [NESTED, prediction(CustomLabels=[{"Name": "x", "Confidence": 10**400}])],
                 name="p.jsonl")
    output, error = run("import_predictions", "logos/v2", str(path), "--model-version", "batch-1")
    assert error == "nothing imported: 0 images imported with 0 proposals from 2 lines, 2 lines not imported"
    assert not ModelVersion.objects.filter(name="batch-1").exists()
    assert Proposal.objects.count() == 0


@pytest.mark.parametrize("source", [
    "images/other/v1/secret.jpg",
    "images/logos/v1/a.jpg",
    "images/logos/v2/../../other/v1/secret.jpg",
    "images/logos/v2//etc/passwd",
    "/etc/passwd",
    "../var/loupe.sqlite3",
    "http://example.com/a.jpg",
    "file:///etc/passwd",
    "s3:/bucket/a.jpg",
])
def test_import_manifest_refuses_sources_outside_the_iterations_storage(iteration, tmp_path, source):
    path = write(tmp_path, [spec(**{"source-ref": source})])
    output, error = run("import_manifest", "logos/v2", str(path))
    assert output[0] == (
        f"line 1: error: source-ref {source!r} is neither an s3:// address nor a file of this "
        "iteration (images/logos/v2/...): Loupe imports images by those addresses only"
    )
    assert error is not None
    assert not Image.objects.filter(source=source).exists()


def test_import_manifest_accepts_its_own_storage_prefix_and_s3(iteration, tmp_path):
    path = write(tmp_path, [spec(**{"source-ref": "images/logos/v2/a.jpg"}),
                            spec(**{"source-ref": "s3://bucket/v2/b.jpg"})])
    output, error = run("import_manifest", "logos/v2", str(path))
    assert error is None
    assert set(iteration.images.values_list("source", flat=True)) == {
        "s3://photos/v2/0.jpg", "images/logos/v2/a.jpg", "s3://bucket/v2/b.jpg"}
