"""Simulated reviewers for the headless demo loop.

They go through the same service functions as the review page (claim_next, submit_review), so the
loop exercises the real thing.
"""

from dataclasses import dataclass

from projects import geometry
from reviewer.editor.reviews import BoxInput, submit_review
from reviewer.queue import claim_next

# A reviewer leaves a proposal this close to the object as it is, and redraws anything looser.
ACCEPT_IOU = 0.85
# Below this overlap a proposal is not the object at all: rejected, and the object drawn anew.
ADJUST_IOU = 0.3


class SimulationError(Exception):
    """The iteration holds images the simulation has no truth for."""


@dataclass(frozen=True)
class SimulatedReview:
    boxes: list  # [BoxInput]
    hidden: list  # ids of proposals below their label's threshold, as the slider hides them


def review_against_truth(*, image, truth, labels):
    """What a careful reviewer submits for an image whose objects are `truth` ([DemoObject]).

    Only proposals at or above their label's threshold are shown (the review page's default).
    Each object takes the closest unused shown proposal: kept untouched when it already fits, else
    redrawn (and relabelled) to the object; objects no proposal found are drawn from scratch; every
    other shown proposal is rejected.
    """
    model_version = image.iteration.shown_model
    proposals = (list(image.proposals.filter(model_version=model_version, left__isnull=False))
                 if model_version else [])
    shown = [p for p in proposals if p.confidence >= model_version.threshold_for(p.label_id)]
    hidden = [p.pk for p in proposals if p not in shown]
    boxes, used = [], set()
    for obj in truth:
        rect = geometry.Rect(*obj.box)
        scored = [
            (geometry.iou(rect, _shown_rect(p, image)), p) for p in shown if p.pk not in used
        ]
        overlap, proposal = max(scored, key=lambda pair: pair[0], default=(0.0, None))
        label_id = labels[obj.label]
        if proposal is None or overlap < ADJUST_IOU:
            boxes.append(BoxInput(label_id, *obj.box))
            continue
        used.add(proposal.pk)
        if overlap >= ACCEPT_IOU and proposal.label_id == label_id:
            boxes.append(BoxInput(label_id, *_shown_rect(proposal, image), proposal_id=proposal.pk))
        else:
            boxes.append(BoxInput(label_id, *obj.box, proposal_id=proposal.pk))
    return SimulatedReview(boxes, hidden)


def _shown_rect(proposal, image):
    return geometry.normalized_proposal(
        geometry.Rect(proposal.left, proposal.top, proposal.width, proposal.height),
        image.width, image.height,
    )


def simulate_reviews(*, iteration, truth, reviewers, progress=None):
    """Reviewers take turns claiming the next image and submitting the truth; returns the count.

    truth: {image name: [DemoObject]} (the generator's ground truth).
    """
    labels = dict(iteration.project.labels.values_list("name", "id"))
    total = iteration.images.count()
    reviewed = 0
    while True:
        reviewer = reviewers[reviewed % len(reviewers)]
        image = claim_next(iteration=iteration, user=reviewer)
        if image is None:
            return reviewed
        if image.name not in truth:
            raise SimulationError(f"{image.name} in {iteration} is not part of the generated data")
        review = review_against_truth(image=image, truth=truth[image.name], labels=labels)
        submit_review(
            image=image, reviewer=reviewer, version=image.version, boxes=review.boxes,
            no_objects=not review.boxes, hidden_proposal_ids=review.hidden,
        )
        reviewed += 1
        if progress:
            progress(reviewed, total)
