from datetime import timedelta

import pytest
from django.utils import timezone

from projects.models import Image
from reviewer.editor.reviews import (
    NO_MODEL_VERSION,
    BoxInput,
    LeaseLost,
    ReviewValidationError,
    StaleReview,
    submit_review,
)
from reviewer.models import Box, Review
from reviewer.queue import claim_next
from tests.factories import (
    label,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(reviewer):
    project = make_project("logos", reviewer=reviewer)
    model = make_model_version(project, "m1")
    iteration = make_iteration(project, "v2", shown_model=model)
    image = make_image(iteration, width=200, height=100)
    first = make_proposal(image, "aws-logo", (10, 20, 50, 30), confidence=95.0, model_version=model)
    second = make_proposal(image, "smile-logo", (100.4, 10.6, 40.2, 40), confidence=40.0,
                           model_version=model)
    claim_next(iteration=iteration, user=reviewer)
    return project, iteration, image, first, second


def box_of(proposal, **changes):
    fields = {"label_id": proposal.label_id, "left": proposal.left, "top": proposal.top,
              "width": proposal.width, "height": proposal.height, "proposal_id": proposal.pk}
    fields.update(changes)
    return BoxInput(**fields)


def test_accept_adjust_add_and_reject_are_recorded_with_provenance(setup, reviewer):
    project, iteration, image, first, second = setup
    smile = label(project, "smile-logo")
    review = submit_review(
        image=image, reviewer=reviewer, version=0, elapsed_ms=4200,
        boxes=[
            box_of(first),
            BoxInput(smile.pk, 5.4, 60.2, 20.0, 19.6),
        ],
        hidden_proposal_ids=[second.pk],
    )
    boxes = list(Box.objects.filter(image=image).order_by("id").values_list(
        "label__name", "left", "top", "width", "height", "origin", "proposal_id", "iou", "relabeled"))
    assert boxes == [
        ("aws-logo", 10.0, 20.0, 50.0, 30.0, "accepted", first.pk, 1.0, False),
        ("smile-logo", 5.0, 60.0, 20.0, 20.0, "added", None, None, False),
    ]
    assert review.changed is True
    assert review.elapsed_ms == 4200
    assert review.decisions == [
        {"proposal": first.pk, "verdict": "accepted", "label": first.label_id,
         "box": [10.0, 20.0, 50.0, 30.0], "confidence": 95.0, "iou": 1.0, "relabeled": False},
        {"proposal": None, "verdict": "added", "label": smile.pk, "box": [5.0, 60.0, 20.0, 20.0]},
        {"proposal": second.pk, "verdict": "rejected", "label": second.label_id, "confidence": 40.0,
         "hidden": True},
    ]
    image.refresh_from_db()
    assert (image.status, image.version, image.leased_by_id, image.reviewed_by_id) == (
        Image.Status.REVIEWED, 1, None, reviewer.pk)


def test_untouched_proposal_overhanging_the_frame_is_accepted_clamped(setup, reviewer):
    project, iteration, image, first, second = setup
    over = make_proposal(image, "aws-logo", (180.3, 90, 30, 20), model_version=first.model_version)
    submit_review(image=image, reviewer=reviewer, version=0,
                  boxes=[box_of(over, left=180, width=20, top=90, height=10)])
    assert list(Box.objects.values_list("origin", "left", "top", "width", "height", "iou")) == [
        ("accepted", 180.0, 90.0, 20.0, 10.0, 1.0)]


def test_moved_and_relabeled_proposals_are_adjusted(setup, reviewer):
    project, iteration, image, first, second = setup
    aws = label(project, "aws-logo")
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[
        box_of(first, left=20),
        box_of(second, label_id=aws.pk),
    ])
    rows = list(Box.objects.order_by("id").values_list("origin", "iou", "relabeled", "left", "width"))
    assert rows == [
        ("adjusted", pytest.approx(40 * 30 / (60 * 30)), False, 20.0, 50.0),
        ("adjusted", 1.0, True, 100.0, 41.0),
    ]
    assert [d["verdict"] for d in review.decisions] == ["adjusted", "adjusted"]


def test_no_objects_rejects_every_proposal(setup, reviewer):
    project, iteration, image, first, second = setup
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[], no_objects=True)
    assert Box.objects.count() == 0
    assert [(d["proposal"], d["verdict"], d["hidden"]) for d in review.decisions] == [
        (first.pk, "rejected", False), (second.pk, "rejected", False)]
    image.refresh_from_db()
    assert (image.no_objects, image.status) == (True, Image.Status.REVIEWED)


@pytest.mark.parametrize(
    ("box", "field", "message"),
    [
        (dict(width=float("nan")), "boxes[0].width", "Box 1: width must be a finite number of pixels."),
        (dict(left=float("inf")), "boxes[0].left", "Box 1: left must be a finite number of pixels."),
        (dict(width=1.4), "boxes[0].size",
         "Box 1 is too small: width and height must be more than 1 pixel after rounding (got 1 x 30)."),
        (dict(left=160.0, width=41), "boxes[0].position",
         "Box 1 (160, 20, 41 x 30) is not inside the 200 x 100 image."),
        (dict(top=-0.6), "boxes[0].position",
         "Box 1 (10, -1, 50 x 51) is not inside the 200 x 100 image."),
        (dict(label_id=999999), "boxes[0].label",
         "Box 1: label 999999 is not one of this project's labels."),
        (dict(proposal_id=999999), "boxes[0].proposal",
         "Box 1: proposal 999999 is not one of this image's proposals."),
    ],
)
def test_invalid_boxes_are_refused_and_nothing_is_saved(setup, reviewer, box, field, message):
    project, iteration, image, first, second = setup
    if box.get("top") == -0.6:
        box["height"] = 50.6
    with pytest.raises(ReviewValidationError) as error:
        submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first, **box)])
    assert (error.value.field, error.value.message) == (field, message)
    assert (Box.objects.count(), Review.objects.count()) == (0, 0)
    image.refresh_from_db()
    assert (image.version, image.status) == (0, Image.Status.PENDING)


def test_label_of_another_project_is_refused(setup, reviewer):
    project, iteration, image, first, second = setup
    other = make_project("other")
    with pytest.raises(ReviewValidationError) as error:
        submit_review(image=image, reviewer=reviewer, version=0,
                      boxes=[box_of(first, label_id=label(other, "aws-logo").pk)])
    assert error.value.field == "boxes[0].label"


def test_proposal_of_another_image_is_refused(setup, reviewer):
    project, iteration, image, first, second = setup
    elsewhere = make_proposal(make_image(iteration), "aws-logo", model_version=first.model_version)
    with pytest.raises(ReviewValidationError) as error:
        submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(elsewhere)])
    assert error.value.message == f"Box 1: proposal {elsewhere.pk} is not one of this image's proposals."


def test_same_proposal_twice_and_too_many_boxes_and_boxes_with_no_objects(setup, reviewer):
    project, iteration, image, first, second = setup
    cases = [
        (dict(boxes=[box_of(first), box_of(first)]), "boxes[1].proposal",
         f"Box 2: proposal {first.pk} is already used by another box."),
        (dict(boxes=[BoxInput(first.label_id, 1, 1, 5, 5)] * 51), "boxes",
         "An image can have at most 50 boxes; this review has 51."),
        (dict(boxes=[box_of(first)], no_objects=True), "no_objects",
         "An image marked as having no objects cannot also have boxes."),
    ]
    for kwargs, field, message in cases:
        with pytest.raises(ReviewValidationError) as error:
            submit_review(image=image, reviewer=reviewer, version=0, **kwargs)
        assert (error.value.field, error.value.message) == (field, message)
    assert Box.objects.count() == 0


def test_stale_version_is_refused_and_overwrites_nothing(setup, reviewer):
    project, iteration, image, first, second = setup
    submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)])
    with pytest.raises(StaleReview):
        submit_review(image=image, reviewer=reviewer, version=0, boxes=[], no_objects=True)
    assert list(Box.objects.values_list("proposal_id", flat=True)) == [first.pk]
    assert Review.objects.count() == 1
    image.refresh_from_db()
    assert (image.version, image.no_objects) == (1, False)


def test_lease_held_by_someone_else_is_lease_lost_but_expired_one_is_not(setup, reviewer):
    project, iteration, image, first, second = setup
    other = make_user("other")
    now = timezone.now()
    Image.objects.filter(pk=image.pk).update(leased_by=other, lease_expires_at=now + timedelta(minutes=5))
    with pytest.raises(LeaseLost):
        submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)], now=now)
    assert Box.objects.count() == 0
    later = now + timedelta(minutes=6)
    submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)], now=later)
    assert Box.objects.count() == 1


def test_correcting_a_reviewed_image_replaces_its_boxes(setup, reviewer):
    project, iteration, image, first, second = setup
    submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)])
    submit_review(image=image, reviewer=reviewer, version=1, boxes=[box_of(second)])
    assert list(Box.objects.values_list("proposal_id", flat=True)) == [second.pk]
    assert Review.objects.count() == 2


def switch_model(iteration, image, project):
    """An owner's new proposal run: the iteration's model changes and the image gets its proposals."""
    newer = make_model_version(project, "m2")
    iteration.shown_model = newer
    iteration.save(update_fields=["shown_model"])
    image.iteration = iteration
    return newer, make_proposal(image, "aws-logo", (30, 30, 40, 40), confidence=70.0, model_version=newer)


def test_a_review_of_the_proposals_shown_survives_a_model_switch(setup, reviewer):
    project, iteration, image, first, second = setup
    newer, newer_proposal = switch_model(iteration, image, project)
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)],
                           model_version_id=first.model_version_id)
    assert list(Box.objects.values_list("proposal_id", "origin")) == [(first.pk, "accepted")]
    assert [(d["proposal"], d["verdict"]) for d in review.decisions] == [
        (first.pk, "accepted"), (second.pk, "rejected")]
    # Without model_version_id the iteration's current model is meant, as before.
    with pytest.raises(ReviewValidationError) as error:
        submit_review(image=image, reviewer=reviewer, version=1, boxes=[box_of(first)])
    assert error.value.message == f"Box 1: proposal {first.pk} is not one of this image's proposals."


def test_a_review_is_judged_only_against_the_model_version_it_names(setup, reviewer):
    project, iteration, image, first, second = setup
    newer, newer_proposal = switch_model(iteration, image, project)
    with pytest.raises(ReviewValidationError) as error:
        submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(newer_proposal)],
                      model_version_id=first.model_version_id)
    assert (error.value.field, error.value.message) == (
        "boxes[0].proposal", f"Box 1: proposal {newer_proposal.pk} is not one of this image's proposals.")


def test_a_page_that_showed_no_model_rejects_no_proposals(setup, reviewer):
    project, iteration, image, first, second = setup
    aws = label(project, "aws-logo")
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[BoxInput(aws.pk, 1, 1, 20, 20)],
                           model_version_id=NO_MODEL_VERSION)
    assert review.decisions == [
        {"proposal": None, "verdict": "added", "label": aws.pk, "box": [1.0, 1.0, 20.0, 20.0]}]


def test_image_level_proposals_are_not_decided_by_a_review(setup, reviewer):
    project, iteration, image, first, second = setup
    image_level = make_proposal(image, "smile-logo", (None, None, None, None), confidence=99.0,
                                model_version=first.model_version)
    review = submit_review(image=image, reviewer=reviewer, version=0,
                           boxes=[box_of(first), box_of(second)])
    assert (review.changed, [d["proposal"] for d in review.decisions]) == (False, [first.pk, second.pk])
    with pytest.raises(ReviewValidationError) as error:
        submit_review(image=image, reviewer=reviewer, version=1,
                      boxes=[BoxInput(image_level.label_id, 1, 1, 20, 20, image_level.pk)])
    assert error.value.message == f"Box 1: proposal {image_level.pk} is not one of this image's proposals."


def test_elapsed_time_beyond_a_day_is_capped_not_refused(setup, reviewer):
    project, iteration, image, first, second = setup
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)],
                           elapsed_ms=3 * 86_400_000)
    review.refresh_from_db()
    assert review.elapsed_ms == 86_400_000


def test_hidden_proposals_do_not_make_a_review_accepted_as_proposed_changed(setup, reviewer):
    # Issue 10, point 6: proposals below the reviewer's slider are saved as rejected and marked
    # hidden, but the reviewer did not reject them, so "changed" stays False.
    project, iteration, image, first, second = setup
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)],
                           hidden_proposal_ids=[second.pk])
    assert review.changed is False
    assert [(d["proposal"], d["verdict"], d.get("hidden")) for d in review.decisions] == [
        (first.pk, "accepted", None), (second.pk, "rejected", True)]


def test_a_visible_rejection_still_makes_a_review_changed(setup, reviewer):
    project, iteration, image, first, second = setup
    review = submit_review(image=image, reviewer=reviewer, version=0, boxes=[box_of(first)])
    assert review.changed is True
