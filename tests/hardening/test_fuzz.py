"""Issue 15, done-when: hostile payloads fuzzed with hypothesis against the submit endpoint, the three
line importers (import_manifest, import_predictions, check_manifest's validator) and the image
importer. 0 server errors, and nothing half-written: every example runs in a savepoint rolled back
afterwards, and what it stored is exactly what its report (or its response) says.

Kept small for CI (max_examples 40 each, deadline=None).
"""

import copy
import io
import json

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projects.images.importing import import_files
from projects.manifests.checks import validate_lines
from projects.manifests.importing import import_manifest
from projects.models import Image, ModelVersion, Proposal
from projects.proposals.predictions import import_predictions
from reviewer.models import Box, Review
from reviewer.queue import claim_next
from tests.factories import make_image, make_iteration, make_project, make_user
from tests.projects.manifests.test_export import SPEC_LINE

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Numbers where hostile input lives: beyond float range, beyond bigint, edges of float, negatives.
HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([10**400, -(10**400), 10**30, 2**63, 2**63 - 1, -(2**63), 1e308, -1e308, 5e-324,
                     0, -1, 0.5, 4096, 1_000_001]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), HOSTILE_NUMBERS,
                    st.text(max_size=20), st.sampled_from(["9999-12-31T23:59:59-14:00", "", "\ufeff"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def nested(depth):
    return "[" * depth + "]" * depth


RAW = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([nested(100_000), '{"version": ' + nested(5000) + "}", "NaN", "{", "\ufeff{}"]).map(
        str.encode),
)


def _scope():
    """A savepoint rolled back at the end: each example starts from the same rows."""
    class Scope:
        def __enter__(self):
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def __exit__(self, *exc):
            transaction.set_rollback(True)
            return self.atomic.__exit__(*exc)
    return Scope()


# --- the submit endpoint --------------------------------------------------------------------------

def _box(label_id):
    return st.fixed_dictionaries({
        "label": st.one_of(st.just(label_id), SCALARS), "left": HOSTILE_NUMBERS, "top": HOSTILE_NUMBERS,
        "width": HOSTILE_NUMBERS, "height": HOSTILE_NUMBERS, "proposal": st.one_of(st.none(), SCALARS),
    })


def _submit_bodies(label_id):
    structured = st.fixed_dictionaries(
        {"version": st.one_of(st.just(0), SCALARS)},
        optional={"boxes": st.one_of(st.lists(_box(label_id), max_size=3), JSON),
                  "hidden": JSON, "open_elsewhere": JSON, "no_objects": SCALARS,
                  "elapsed_ms": SCALARS, "started_at": SCALARS, "model_version": SCALARS},
    ).map(lambda d: json.dumps(d).encode())
    return st.one_of(structured, JSON.map(lambda d: json.dumps(d).encode()), RAW)


@pytest.fixture
def leased(client):
    reviewer = make_user("rita")
    project = make_project("logos", reviewer=reviewer)
    iteration = make_iteration(project, "v2")
    image = make_image(iteration, name="a.jpg", width=200, height=100)
    claim_next(iteration=iteration, user=reviewer)
    client.force_login(reviewer)
    return image


def test_fuzzed_submits_never_500_and_write_only_what_they_save(client, leased):
    url = reverse("reviewer:submit", args=[leased.pk])
    label_id = leased.iteration.project.labels.order_by("id").first().pk

    @FUZZ
    @given(body=_submit_bodies(label_id))
    def check(body):
        with _scope():
            # The test client re-raises a view's exception: a server error fails here.
            response = client.post(url, body, content_type="application/json")
            assert response.status_code in (200, 400, 409), response.content[:200]
            assert response["Content-Type"] == "application/json"
            reviews, boxes = Review.objects.count(), Box.objects.count()
            if response.status_code == 200:
                assert reviews == 1
            else:
                assert (reviews, boxes) == (0, 0)
                assert response.json()["error"]

    check()


# --- the line importers ---------------------------------------------------------------------------

MANIFEST_PATHS = [
    ("source-ref",), ("bounding-box", "image_size", 0, "width"), ("bounding-box", "image_size", 0, "height"),
    ("bounding-box", "image_size"), ("bounding-box", "annotations", 0, "left"),
    ("bounding-box", "annotations", 0, "width"), ("bounding-box", "annotations", 0, "class_id"),
    ("bounding-box", "annotations"), ("bounding-box-metadata", "objects", 0, "confidence"),
    ("bounding-box-metadata", "class-map"), ("bounding-box-metadata", "creation-date"),
    ("bounding-box-metadata", "human-annotated"), ("bounding-box-metadata", "type"), ("bounding-box",),
]
SOURCES = st.sampled_from(["s3://photos/v2/0.jpg", "images/other/v1/x.jpg", "images/logos/v2/../x.jpg",
                           "/etc/passwd", "s3://b/new.jpg", "images/logos/v2/ok.jpg"])


def _mutated_line(draw_path, value):
    line = copy.deepcopy(SPEC_LINE)
    target = line
    for key in draw_path[:-1]:
        target = target[key]
    target[draw_path[-1]] = value
    return json.dumps(line)


MANIFEST_LINES = st.one_of(
    st.builds(_mutated_line, st.sampled_from(MANIFEST_PATHS), st.one_of(JSON, SOURCES)),
    JSON.map(json.dumps),
    st.text(max_size=40),
    st.sampled_from([nested(100_000), '{"a": ' + nested(100_000) + "}", '{"x": NaN}', "\ufeff" + json.dumps(
        SPEC_LINE)]),
)


@pytest.fixture
def iteration():
    iteration = make_iteration(make_project("logos"), "v2")
    make_image(iteration, source="s3://photos/v2/0.jpg", width=1024, height=768)
    make_image(iteration, source="s3://my-bucket/v2/train/img-0007.jpg", width=1024, height=768)
    return iteration


def test_fuzzed_manifest_lines_are_reported_never_raised_nor_half_written(iteration):
    images = Image.objects.count()

    @FUZZ
    @given(lines=st.lists(MANIFEST_LINES, min_size=1, max_size=4))
    def check(lines):
        with _scope():
            report = import_manifest(iteration=iteration, lines=lines, create_labels=True)
            assert report.imported + len(report.errors) <= len(lines)
            assert all(1 <= number <= len(lines) for number, _ in report.errors)
            assert Image.objects.count() == images + report.images_created
            assert Box.objects.count() <= report.boxes
            assert Proposal.objects.count() <= report.proposals
            assert not Image.objects.exclude(source__startswith="s3://").exclude(
                source__startswith="images/logos/v2/").exists()
            validated = validate_lines(lines)  # check_manifest's validator: a report, never a crash
            assert validated.as_text()

    check()


def _prediction(value, key):
    line = {"source-ref": "s3://photos/v2/0.jpg",
            "CustomLabels": [{"Name": "aws-logo", "Confidence": 70.0, "Geometry": {
                "BoundingBox": {"Left": 0.1, "Top": 0.1, "Width": 0.5, "Height": 0.5}}}]}
    if key in ("Left", "Top", "Width", "Height"):
        line["CustomLabels"][0]["Geometry"]["BoundingBox"][key] = value
    elif key in ("Name", "Confidence"):
        line["CustomLabels"][0][key] = value
    else:
        line[key] = value
    return json.dumps(line)


PREDICTION_LINES = st.one_of(
    st.builds(_prediction, JSON, st.sampled_from(["Left", "Top", "Width", "Height", "Name", "Confidence",
                                                  "CustomLabels", "source-ref"])),
    MANIFEST_LINES,
)


def test_fuzzed_prediction_lines_are_reported_never_raised_nor_half_written(iteration):
    @FUZZ
    @given(lines=st.lists(PREDICTION_LINES, min_size=1, max_size=4))
    def check(lines):
        with _scope():
            version = ModelVersion.objects.create(project=iteration.project, name="fuzz",
                                                  kind=ModelVersion.Kind.IMPORTED)
            report = import_predictions(iteration=iteration, model_version=version,
                                        lines=[line.encode() for line in lines])
            assert report.lines == len(lines)
            assert all(1 <= number <= len(lines) for number, _ in report.problems)
            # A line is imported whole or not at all: what is stored is the last good line's per image.
            assert Proposal.objects.filter(model_version=version).count() <= report.proposals

    check()


# --- the image importer -------------------------------------------------------------------------------

def test_fuzzed_image_files_are_rejected_per_file_and_leave_no_file_without_a_row(iteration, media_root):
    from tests.hardening.test_image_bombs import bomb_png

    good = __import__("tests.factories", fromlist=["image_bytes"]).image_bytes(100, 100)
    files = st.one_of(st.binary(max_size=200), st.just(bomb_png()), st.just(good),
                      st.binary(max_size=60).map(lambda tail: good[:200] + tail),
                      st.binary(max_size=60).map(lambda tail: b"\x89PNG\r\n\x1a\n" + tail))

    @FUZZ
    @given(contents=st.lists(files, min_size=1, max_size=3))
    def check(contents):
        with _scope():
            names = [(f"f{i}.{'png' if i % 2 else 'jpg'}", io.BytesIO(data))
                     for i, data in enumerate(contents)]
            report = import_files(iteration=iteration, files=names)
            rows = set(iteration.images.filter(source__startswith="images/").values_list("source", flat=True))
            on_disk = {str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()}
            assert on_disk == rows
            assert report.imported + report.duplicates + len(report.rejected) == len(contents)
            for source in on_disk:  # the savepoint rolls back rows, not files
                (media_root / source).unlink()

    check()
