"""The owner's image list: filters, keyset pages, totals from the counters, a flat query count."""

import pytest
from django.urls import reverse

from projects.models import Image
from reviewer.editor.reviews import BoxInput, submit_review
from tests.factories import (
    label,
    make_box,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_review,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(reviewer, owner):
    return make_project("logos", reviewer=reviewer, owner=owner)


@pytest.fixture
def model(project):
    return make_model_version(project, "m1")


@pytest.fixture
def iteration(project, model):
    return make_iteration(project, "v2", shown_model=model)


@pytest.fixture
def url():
    return reverse("reviewer:images", args=["logos", "v2"])


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def fill(iteration, count, *, reviewed_every=0):
    """count images at positions 0..count-1, named by position; every reviewed_every-th reviewed."""
    Image.objects.bulk_create(
        [Image(iteration=iteration, source=f"s3://b/{n:03d}.jpg", name=f"{n:03d}.jpg", width=64, height=48,
               position=n, status=Image.Status.REVIEWED if reviewed_every and n % reviewed_every == 0
               else Image.Status.PENDING) for n in range(count)])
    return list(iteration.images.order_by("position", "id"))


def names(response):
    return [image.name for image in response.context["page"].images]


def test_filters_pick_status_label_reviewer_and_changed(owner_client, url, owner, reviewer, iteration,
                                                        project, model):
    kept, changed, pending = (make_image(iteration, name=n) for n in ("kept.jpg", "changed.jpg", "p.jpg"))
    aws = label(project, "aws-logo")
    accepted = make_proposal(kept, "aws-logo", (10, 20, 50, 30), model_version=model)
    make_proposal(changed, "aws-logo", (10, 20, 50, 30), model_version=model)
    submit_review(image=kept, reviewer=reviewer, version=0,
                  boxes=[BoxInput(aws.pk, 10, 20, 50, 30, accepted.pk)])
    submit_review(image=changed, reviewer=owner, version=0,
                  boxes=[BoxInput(label(project, "smile-logo").pk, 1, 1, 20, 20)])

    assert names(owner_client.get(url)) == ["kept.jpg", "changed.jpg", "p.jpg"]
    assert names(owner_client.get(url, {"status": "pending"})) == ["p.jpg"]
    assert names(owner_client.get(url, {"label": aws.pk})) == ["kept.jpg"]
    make_box(kept, "smile-logo", (100, 10, 20, 20))
    page = owner_client.get(url, {"label": aws.pk}).context["page"]
    assert [(image.name, image.box_count) for image in page.images] == [("kept.jpg", 2)]
    assert names(owner_client.get(url, {"reviewer": reviewer.pk})) == ["kept.jpg"]
    assert names(owner_client.get(url, {"changed": "on"})) == ["changed.jpg"]
    # "Changed" is the newest review's: a later review that accepts everything clears it.
    submit_review(image=changed, reviewer=owner, version=1, boxes=[BoxInput(aws.pk, 10, 20, 50, 30,
                                                                            changed.proposals.get().pk)])
    assert names(owner_client.get(url, {"changed": "on"})) == []


def test_filters_that_are_not_understood_are_reported_and_ignored(owner_client, url, iteration):
    fill(iteration, 3, reviewed_every=2)
    for query in ({"status": "lost"}, {"label": 99999}, {"after": "1;2"}, {"before": "x"}, {"page": 0}):
        response = owner_client.get(url, {"status": "pending", **query} if "status" not in query else query)
        assert names(response) == ["000.jpg", "001.jpg", "002.jpg"], query
        assert "Some filters were not understood and are ignored." in response.content.decode()


def test_pages_follow_the_cursor_forward_and_back(owner_client, url, iteration):
    images = fill(iteration, 120)
    first = owner_client.get(url)
    page = first.context["page"]
    assert [image.pk for image in page.images] == [image.pk for image in images[:50]]
    assert (page.previous, page.next) == (None, f"49.{images[49].pk}")
    html = first.content.decode()
    assert f'<a href="?after=49.{images[49].pk}" rel="next">Next →</a>' in html
    assert "rel=\"prev\"" not in html

    second = owner_client.get(url, {"after": page.next}).context["page"]
    assert [image.pk for image in second.images] == [image.pk for image in images[50:100]]
    assert (second.previous, second.next) == (f"50.{images[50].pk}", f"99.{images[99].pk}")
    last = owner_client.get(url, {"after": second.next}).context["page"]
    assert [image.pk for image in last.images] == [image.pk for image in images[100:]]
    assert (last.previous, last.next) == (f"100.{images[100].pk}", None)

    back = owner_client.get(url, {"before": last.previous}).context["page"]
    assert [image.pk for image in back.images] == [image.pk for image in images[50:100]]
    assert (back.previous, back.next) == (f"50.{images[50].pk}", f"99.{images[99].pk}")
    start = owner_client.get(url, {"before": back.previous}).context["page"]
    assert [image.pk for image in start.images] == [image.pk for image in images[:50]]
    assert (start.previous, start.next) == (None, f"49.{images[49].pk}")


def test_images_at_the_same_position_are_ordered_by_id_across_a_page_boundary(owner_client, url, iteration):
    images = fill(iteration, 49)
    tied = [make_image(iteration, name=f"tied{n}.jpg", position=48) for n in range(3)]
    page = owner_client.get(url).context["page"]
    assert [image.pk for image in page.images] == [image.pk for image in images] + [tied[0].pk]
    following = owner_client.get(url, {"after": page.next}).context["page"]
    assert [image.name for image in following.images] == ["tied1.jpg", "tied2.jpg"]
    assert following.next is None


def test_filters_are_kept_in_the_page_links(owner_client, url, iteration):
    images = fill(iteration, 130, reviewed_every=2)
    response = owner_client.get(url, {"status": "reviewed"})
    page = response.context["page"]
    assert [image.name for image in page.images] == [f"{n:03d}.jpg" for n in range(0, 100, 2)]
    assert f'<a href="?status=reviewed&amp;after=98.{images[98].pk}" rel="next">Next →</a>' in (
        response.content.decode())
    following = owner_client.get(url, {"status": "reviewed", "after": page.next}).context["page"]
    assert [image.name for image in following.images] == [f"{n:03d}.jpg" for n in range(100, 130, 2)]


def test_totals_come_from_the_counters_and_only_where_they_count_every_match(owner_client, url, iteration,
                                                                           reviewer):
    fill(iteration, 7, reviewed_every=3)
    html = owner_client.get(url).content.decode()
    assert '<p class="counts" data-testid="image-total">7 images</p>' in html
    html = owner_client.get(url, {"status": "reviewed"}).content.decode()
    assert '<p class="counts" data-testid="image-total">3 images</p>' in html
    html = owner_client.get(url, {"status": "pending", "reviewer": reviewer.pk}).content.decode()
    assert 'data-testid="image-total"' not in html


def test_old_numbered_links_open_their_page_or_the_first(owner_client, url, iteration):
    images = fill(iteration, 120)
    page = owner_client.get(url, {"page": 2}).context["page"]
    assert [image.pk for image in page.images] == [image.pk for image in images[50:100]]
    assert (page.previous, page.next) == (f"50.{images[50].pk}", f"99.{images[99].pk}")
    assert [image.pk for image in owner_client.get(url, {"page": 9}).context["page"].images] == []
    response = owner_client.get(url, {"page": 21, "status": "pending"})
    assert (response.status_code, response["Location"]) == (302, f"{url}?status=pending")
    response = owner_client.get(url, {"page": 9999}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert "The image list now pages with Next and Previous: here is its first page." in (
        response.content.decode())


def test_a_cursor_past_the_end_shows_an_empty_page_with_a_way_back(owner_client, url, iteration):
    fill(iteration, 3)
    response = owner_client.get(url, {"after": "500.1"})
    assert names(response) == []
    assert '<a href="?">First page</a>' in response.content.decode()


def test_only_owners_see_the_list(client, reviewer, url, iteration):
    client.force_login(reviewer)
    assert client.get(url).status_code == 403


# session, user, the project, the owner's membership, the iteration; the page, its box counts, the
# counters; labels and reviewers for the filter form.
LIST_QUERIES = 10


@pytest.mark.parametrize("size", [3, 60])
@pytest.mark.parametrize("later_page", [False, True])
@pytest.mark.parametrize("query", [{}, {"status": "reviewed"}])
def test_list_query_count_is_the_same_at_every_size_and_page(owner_client, url, iteration, reviewer, size,
                                                             later_page, query, django_assert_num_queries):
    images = fill(iteration, size, reviewed_every=1 if query else 0)
    for image in images[::2]:
        make_review(image, reviewer)
        make_box(image, "aws-logo")
    if later_page:
        query = {**query, "after": f"{images[0].position}.{images[0].pk}"}
    with django_assert_num_queries(LIST_QUERIES):
        response = owner_client.get(url, query)
    expected = images[1:51] if later_page else images[:50]
    assert [image.pk for image in response.context["page"].images] == [image.pk for image in expected]
    assert [image.box_count for image in response.context["page"].images] == [
        1 if images.index(image) % 2 == 0 else 0 for image in expected]
