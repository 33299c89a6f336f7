"""Raw bulk rows: COPY on PostgreSQL, executemany on SQLite, the same rows either way."""

import json
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from projects import bulkrows
from projects.bulkrows import insert_rows, pairs_where_in, update_rows
from projects.models import Image
from projects.proposals.predictions import import_predictions
from tests.factories import make_image, make_iteration, make_model_version, make_project

pytestmark = pytest.mark.django_db

FIELDS = ("source", "name", "width", "height", "position", "random_key", "status", "no_objects",
          "reviewed_at", "iteration_id")
REVIEWED = datetime(2026, 11, 28, 10, 15, 3, 123456, tzinfo=UTC)
# Text COPY must escape: tabs, line ends, backslashes, and what looks like its NULL marker.
ODD_SOURCES = ["s3://b/tab\there.jpg", "s3://b/line\nend.jpg", "s3://b/back\\slash.jpg", "s3://b/\\N",
               "s3://b/crème brûlée.jpg", "s3://b/quote'\"s.jpg"]


@pytest.fixture
def iteration():
    return make_iteration(make_project("logos"), "v1")


def test_rows_are_written_as_given_with_the_model_defaults(iteration):
    rows = [(source, f"n{k}", 640 + k, 480, k, 7, Image.Status.REVIEWED, k % 2 == 0,
             REVIEWED if k else None, iteration.pk) for k, source in enumerate(ODD_SOURCES)]
    with CaptureQueriesContext(connection) as captured:
        insert_rows(Image, FIELDS, rows)
    assert len(captured) == 1
    stored = Image.objects.order_by("position")
    assert [tuple(getattr(image, name) for name in FIELDS) for image in stored] == rows
    defaults = {(one.depth, one.format, one.version, one.priority, one.file_size) for one in stored}
    assert defaults == {(3, "JPEG", 0, 0.0, 0)}
    assert all(image.created_at is not None for image in stored)


def test_ids_are_read_back_by_key_and_a_column_set_for_many_rows(iteration):
    insert_rows(Image, FIELDS, [(source, "n", 640, 480, k, 7, Image.Status.PENDING, False, None, iteration.pk)
                                for k, source in enumerate(ODD_SOURCES)])
    other = make_iteration(iteration.project, "v2")
    insert_rows(Image, FIELDS, [(ODD_SOURCES[0], "n", 640, 480, 0, 7, Image.Status.PENDING, False, None,
                                 other.pk)])
    ids = pairs_where_in(Image, "source", "id", [*ODD_SOURCES, "s3://b/absent.jpg"], iteration=iteration.pk)
    assert ids == dict(iteration.images.values_list("source", "pk"))
    assert pairs_where_in(Image, "source", "id", [], iteration=iteration.pk) == {}
    update_rows(Image, "priority", [(1.5, ids[ODD_SOURCES[0]]), (2.25, ids[ODD_SOURCES[1]])])
    assert sorted(Image.objects.values_list("priority", flat=True)) == [0.0] * 5 + [1.5, 2.25]


def test_many_keys_are_read_in_one_go_on_every_database(iteration):
    sources = [f"s3://b/{k}.jpg" for k in range(2500)]
    insert_rows(Image, FIELDS, [(source, "n", 640, 480, k, 7, Image.Status.PENDING, False, None, iteration.pk)
                                for k, source in enumerate(sources)])
    ids = pairs_where_in(Image, "source", "id", sources, iteration=iteration.pk)
    assert sorted(ids) == sorted(sources)
    assert len(set(ids.values())) == 2500


def test_a_row_the_database_refuses_writes_none_of_them(iteration):
    rows = [("s3://b/1.jpg", "n", 640, 480, 0, 7, Image.Status.PENDING, False, None, iteration.pk),
            ("s3://b/2.jpg", "n", 0, 480, 1, 7, Image.Status.PENDING, False, None, iteration.pk)]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Image, FIELDS, rows)
    assert not Image.objects.exists()


def test_a_column_without_a_default_must_be_given(iteration):
    with pytest.raises(ValueError, match="projects.Image.width has no default"):
        insert_rows(Image, ("source", "height", "iteration_id"), [("s3://b/1.jpg", 1, iteration.pk)])


def _prediction_lines(iteration, count):
    lines = []
    for k in range(count):
        image = make_image(iteration, source=f"s3://b/{k}.jpg")
        lines.append(json.dumps({"source-ref": image.source,
                                 "CustomLabels": [{"Name": "aws-logo", "Confidence": 50}]}))
    return lines


def _analyzed(captured):
    return [query["sql"] for query in captured if query["sql"].startswith("ANALYZE")]


@pytest.mark.parametrize("lines, refreshes", [(2, 0), (3, 1), (7, 2)])
def test_a_large_import_refreshes_its_tables_statistics_midway_and_at_its_end(
        iteration, monkeypatch, lines, refreshes):
    monkeypatch.setattr(bulkrows, "STATISTICS_AFTER_LINES", 3)
    model = make_model_version(iteration.project)
    given = _prediction_lines(iteration, lines)
    with CaptureQueriesContext(connection) as captured:
        report = import_predictions(iteration=iteration, model_version=model, lines=given, batch_size=4)
    assert report.images == lines
    expected = ['ANALYZE "projects_image", "projects_proposal", "projects_proposaloutcome"'] * refreshes
    assert _analyzed(captured) == (expected if connection.vendor == "postgresql" else [])


def test_the_refreshed_statistics_count_the_rows_just_written_on_postgresql(iteration, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite plans the importers' lookups by their indexes, without statistics")
    monkeypatch.setattr(bulkrows, "STATISTICS_AFTER_LINES", 3)
    model = make_model_version(iteration.project)
    import_predictions(iteration=iteration, model_version=model, lines=_prediction_lines(iteration, 5))
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'projects_proposal'")
        assert cursor.fetchone() == (5.0,)
