import pytest
from django.urls import reverse

from tests.factories import make_image, make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db


def test_every_page_requires_login(client):
    response = client.get(reverse("projects:list"))
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_login_page_is_served(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in to Loupe" in response.content


def test_project_list_shows_only_member_projects(client, reviewer):
    mine = make_project("mine", reviewer=reviewer, name="Mine")
    make_project("theirs", name="Theirs")
    client.force_login(reviewer)
    response = client.get(reverse("projects:list"))
    assert [p.slug for p in response.context["projects"]] == [mine.slug]


def test_staff_see_every_project(client):
    make_project("a")
    make_project("b")
    client.force_login(make_user(staff=True))
    response = client.get(reverse("projects:list"))
    assert [p.slug for p in response.context["projects"]] == ["a", "b"]


def test_reviewer_of_a_gets_404_for_everything_of_b(client, reviewer):
    make_project("a", reviewer=reviewer)
    b = make_project("b")
    iteration = make_iteration(b, "v1")
    image = make_image(iteration)
    client.force_login(reviewer)
    urls = [
        reverse("projects:detail", args=["b"]),
        reverse("projects:settings", args=["b"]),
        reverse("projects:iteration", args=["b", "v1"]),
        reverse("projects:image-file", args=[image.pk]),
    ]
    assert [client.get(url).status_code for url in urls] == [404, 404, 404, 404]
    response = client.post(reverse("projects:iteration-create", args=["b"]), {"name": "v2"})
    assert response.status_code == 404


def test_reviewer_cannot_change_settings_of_own_project(client, reviewer):
    make_project("a", reviewer=reviewer)
    client.force_login(reviewer)
    assert client.get(reverse("projects:settings", args=["a"])).status_code == 403
