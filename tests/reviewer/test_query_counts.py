"""Claiming and saving cost the same number of queries at 10 and at 10,000 images."""

import json
import random

import pytest
from django.utils import timezone

from projects.models import Image, Proposal
from reviewer.editor.reviews import BoxInput, submit_review
from reviewer.queue import claim_next
from tests.factories import label, make_iteration, make_model_version, make_project, make_user

pytestmark = pytest.mark.django_db

SIZES = [10, 10_000]
# claim: own lease?, pick, lease (no savepoint of its own); submit: proposals, version update, delete
# boxes, insert boxes, insert review (inside the caller's transaction: no savepoint). The project's
# labels are read only for a box whose label none of the proposals has.
CLAIM_AND_SUBMIT_QUERIES = 8
# The view: session, user, the image with its access check (one query), one enclosing transaction
# (a savepoint inside the test's own) around the save (5, as above) and the next image's claim (own
# lease?, pick, lease), then the payload: prefetch hint, boxes, proposals, and the progress counters.
SUBMIT_VIEW_QUERIES = 17


def populate(size, reviewer):
    project = make_project(f"size-{size}", reviewer=reviewer)
    model = make_model_version(project, "m1")
    iteration = make_iteration(project, "v1", shown_model=model)
    rng = random.Random(size)
    Image.objects.bulk_create(
        [Image(iteration=iteration, source=f"s3://b/{n}.jpg", name=f"{n}.jpg", width=640, height=480,
               position=n, priority=rng.random(), random_key=rng.randrange(2**31)) for n in range(size)],
        batch_size=2000,
    )
    aws = label(project, "aws-logo")
    image_ids = list(iteration.images.values_list("pk", flat=True))
    Proposal.objects.bulk_create(
        [Proposal(image_id=pk, model_version=model, label=aws, left=10 + k, top=20, width=100, height=50,
                  confidence=90 - k) for pk in image_ids for k in range(2)],
        batch_size=2000,
    )
    # Someone else holds the two hardest images: the claim has to step over their leases.
    holder = make_user(f"holder-{size}")
    hardest = list(iteration.images.order_by("-priority", "id").values_list("pk", flat=True)[:3])
    Image.objects.filter(pk__in=hardest[:2]).update(leased_by=holder, lease_expires_at=timezone.now()
                                                    + timezone.timedelta(minutes=5))
    return iteration, aws, hardest[2]


def accepted_boxes(image_id, aws):
    return [BoxInput(aws.pk, p.left, p.top, p.width, p.height, p.pk)
            for p in Proposal.objects.filter(image_id=image_id).order_by("id")]


@pytest.mark.parametrize("size", SIZES)
def test_claim_and_submit_queries_do_not_grow_with_the_dataset(size, reviewer, django_assert_num_queries):
    iteration, aws, expected = populate(size, reviewer)
    boxes = accepted_boxes(expected, aws)
    with django_assert_num_queries(CLAIM_AND_SUBMIT_QUERIES):
        image = claim_next(iteration=iteration, user=reviewer)
        review = submit_review(image=image, reviewer=reviewer, version=image.version, boxes=boxes)
    assert (image.pk, review.changed, len(review.decisions)) == (expected, False, 2)


def test_a_box_with_a_label_no_proposal_has_reads_the_projects_labels(reviewer, django_assert_num_queries):
    iteration, aws, expected = populate(10, reviewer)
    smile = label(iteration.project, "smile-logo")
    boxes = [*accepted_boxes(expected, aws), BoxInput(smile.pk, 300, 300, 40, 30, None)]
    with django_assert_num_queries(CLAIM_AND_SUBMIT_QUERIES + 1):
        image = claim_next(iteration=iteration, user=reviewer)
        review = submit_review(image=image, reviewer=reviewer, version=image.version, boxes=boxes)
    assert [d["verdict"] for d in review.decisions] == ["accepted", "accepted", "added"]


@pytest.mark.parametrize("size", SIZES)
def test_submit_view_queries_do_not_grow_with_the_dataset(size, reviewer, client, django_assert_num_queries):
    iteration, aws, expected = populate(size, reviewer)
    claim_next(iteration=iteration, user=reviewer)
    client.force_login(reviewer)
    body = {"version": 0, "boxes": [{"label": b.label_id, "left": b.left, "top": b.top, "width": b.width,
                                     "height": b.height, "proposal": b.proposal_id}
                                    for b in accepted_boxes(expected, aws)]}
    with django_assert_num_queries(SUBMIT_VIEW_QUERIES):
        response = client.post(f"/review/images/{expected}/submit", json.dumps(body),
                               content_type="application/json")
    assert response.status_code == 200
    assert response.json()["next"]["progress"] == {"left": size - 1, "total": size, "iteration": "v1"}
