"""Issue 15, item 1: hostile submits are a 400 naming the field at fault, never a 500, never a write."""

import json

import pytest
from django.urls import reverse

from reviewer.models import Box, Review
from reviewer.queue import claim_next
from tests.factories import make_image, make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased(client):
    reviewer = make_user("rita")
    project = make_project("logos", reviewer=reviewer, owner=make_user("olga"))
    iteration = make_iteration(project, "v2")
    image = make_image(iteration, name="a.jpg", width=200, height=100)
    claim_next(iteration=iteration, user=reviewer)
    client.force_login(reviewer)
    image.refresh_from_db()
    return image


def submit(client, image, body):
    url = reverse("reviewer:submit", args=[image.pk])
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data, content_type="application/json")


def box(image, **changes):
    label_id = image.iteration.project.labels.order_by("id").first().pk
    fields = {"label": label_id, "left": 10, "top": 20, "width": 50, "height": 30, "proposal": None}
    fields.update(changes)
    return fields


def assert_refused(response, field):
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid", field)
    assert body["error"]
    assert Review.objects.count() == 0
    assert Box.objects.count() == 0


@pytest.mark.parametrize(("changes", "field"), [
    ({"left": 10**400}, "boxes[0].left"),
    ({"width": -(10**400)}, "boxes[0].width"),
    ({"left": 1e308, "width": 1e308}, "boxes[0].left"),
    ({"top": 5e5, "height": 1.7e308}, "boxes[0].height"),
    ({"label": 10**30}, "boxes[0].label"),
    ({"proposal": 10**30}, "boxes[0].proposal"),
])
def test_coordinates_beyond_float_range_name_the_box_field(client, leased, changes, field):
    response = submit(client, leased, {"version": leased.version, "boxes": [box(leased, **changes)]})
    assert_refused(response, field)


def test_deeply_nested_json_is_a_body_error(client, leased):
    response = submit(client, leased, "[" * 100_000 + "]" * 100_000)
    assert_refused(response, "body")
    assert "nested" in response.json()["error"]


def test_nested_json_inside_a_field_is_refused_for_that_field(client, leased):
    nested = "[" * 50_000 + "]" * 50_000
    response = submit(client, leased, '{"version": 0, "boxes": ' + nested + "}")
    assert_refused(response, "body")


@pytest.mark.parametrize("started_at", [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
])
def test_dates_that_overflow_when_stored_name_started_at(client, leased, started_at):
    response = submit(client, leased, {"version": leased.version, "boxes": [], "started_at": started_at})
    assert_refused(response, "started_at")


def test_an_oversized_body_gets_the_json_error_shape(client, leased, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = submit(client, leased, {"version": leased.version, "boxes": [], "pad": "x" * 5000})
    assert_refused(response, "body")
    assert response.json()["error"] == (
        "The request body is larger than Loupe accepts (1000 bytes); send fewer or smaller boxes."
    )


def test_a_hostile_submit_leaves_a_valid_one_possible(client, leased):
    submit(client, leased, {"version": leased.version, "boxes": [box(leased, left=10**400)]})
    response = submit(client, leased, {"version": leased.version, "boxes": [box(leased)]})
    assert response.status_code == 200
    assert Box.objects.filter(image=leased).count() == 1
