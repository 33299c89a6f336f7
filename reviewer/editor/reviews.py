"""Saving a review: the reviewer's boxes become the image's truth, with provenance and an audit row.

Called by the review page and by headless loops alike, so every rule lives here, not in the view.
"""

from contextlib import nullcontext
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from projects import geometry
from projects.models import Image, LabelClass, Proposal, lease_is_free
from reviewer.models import Box, Review

MAX_BOXES = 50
MIN_SIDE = 1  # pixels; a box must be strictly larger than this in both directions
# A day: a tab left open longer still saves, with its time capped at this (a clock problem or a
# forgotten tab, not time spent reviewing).
MAX_ELAPSED_MS = 24 * 60 * 60 * 1000
# model_version_id for "the page showed no model's proposals" (its iteration had no model then):
# ids start at 1, so this matches no proposal, unlike None, which means "the iteration's current model".
NO_MODEL_VERSION = 0


@dataclass(frozen=True)
class BoxInput:
    label_id: int
    left: float
    top: float
    width: float
    height: float
    proposal_id: int | None = None


class ReviewError(Exception):
    pass


class ReviewValidationError(ReviewError):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


class StaleReview(ReviewError):
    message = (
        "This image was saved by someone else since you opened it, so your review was not saved. "
        "Reload the page to see its current boxes."
    )

    def __init__(self):
        super().__init__(self.message)


class LeaseLost(ReviewError):
    message = (
        "Another reviewer is holding this image now (your hold on it expired). Your edits are kept "
        "on this page: try saving again later, or skip to the next image."
    )

    def __init__(self):
        super().__init__(self.message)


def submit_review(*, image, reviewer, version, boxes, no_objects=False, elapsed_ms=0, started_at=None,
                  now=None, hidden_proposal_ids=(), model_version_id=None):
    """Replace the image's Boxes with the reviewer's, atomically, and record the Review.

    model_version_id is the model whose proposals the reviewer was shown (None: the iteration's
    current one), so a proposal run switching the iteration's model under an open page loses no work.
    Every boxed proposal of that model on the image that no box refers to is recorded as rejected;
    those in hidden_proposal_ids were below the reviewer's confidence slider, which the audit keeps.
    Raises ReviewValidationError (nothing saved), StaleReview if version is not the image's
    current one, LeaseLost if another reviewer holds an unexpired lease.
    """
    now = now or timezone.now()
    boxes = list(boxes)
    _check_shape(boxes, no_objects)
    elapsed_ms = min(max(elapsed_ms, 0), MAX_ELAPSED_MS)
    if model_version_id is None:
        model_version_id = image.iteration.shown_model_id
    proposals = _shown_proposals(image, model_version_id)
    label_ids = _project_label_ids(image, boxes, proposals)
    rows, decisions = _resolve(image, boxes, proposals, label_ids, reviewer, now)
    decisions += _rejections(proposals, {row.proposal_id for row in rows}, set(hidden_proposal_ids))
    changed = any(_changed(d) for d in decisions)
    with _own_transaction():
        _take_version(image=image, reviewer=reviewer, version=version, no_objects=no_objects, now=now,
                      changed=changed)
        Box.objects.filter(image=image).delete()
        Box.objects.bulk_create(rows)
        review = Review.objects.create(
            image=image, reviewer=reviewer, started_at=started_at, submitted_at=now,
            elapsed_ms=elapsed_ms, no_objects=no_objects, changed=changed, decisions=decisions,
        )
    return review


def _project_label_ids(image, boxes, proposals):
    """The project's label ids the boxes may use. The proposals' labels are the project's own, so the
    project's labels are read only when a box has another (most saves accept or drop proposals)."""
    known = {proposal.label_id for proposal in proposals.values()}
    if all(box.label_id in known for box in boxes):
        return known
    project_labels = LabelClass.objects.filter(project_id=image.iteration.project_id).order_by()
    return set(project_labels.values_list("id", flat=True))


def _own_transaction():
    """A transaction for the save, unless the caller's is open (the submit view claims the next image
    in the same commit). Nothing is written before _take_version may refuse, so a savepoint would
    have nothing to undo and would cost two statements on every save."""
    return nullcontext() if transaction.get_connection().in_atomic_block else transaction.atomic()


def _changed(decision):
    # A hidden proposal was below the reviewer's slider, never looked at: saved as rejected for the
    # audit, but not a rejection by the reviewer, or "accepted as proposed" could never happen.
    return decision["verdict"] != "accepted" and not decision.get("hidden")


def _check_shape(boxes, no_objects):
    if len(boxes) > MAX_BOXES:
        raise ReviewValidationError(
            "boxes", f"An image can have at most {MAX_BOXES} boxes; this review has {len(boxes)}."
        )
    if no_objects and boxes:
        raise ReviewValidationError(
            "no_objects", "An image marked as having no objects cannot also have boxes."
        )
    for index, box in enumerate(boxes):
        for name in ("left", "top", "width", "height"):
            if not geometry.all_finite(getattr(box, name)):
                raise ReviewValidationError(f"boxes[{index}].{name}", f"Box {index + 1}: {name} must be a "
                                            "finite number of pixels.")


def _shown_proposals(image, model_version_id):
    """The proposals the editor shows for this model: image-level ones (no box) are never shown,
    so they are neither accepted nor rejected by a review."""
    if not model_version_id:
        return {}
    return {
        # order_by(): the default ordering would join the image and its iteration for nothing.
        p.pk: p for p in Proposal.objects.filter(
            image=image, model_version_id=model_version_id, left__isnull=False
        ).only("id", "label_id", "left", "top", "width", "height", "confidence").order_by()
    }


def _resolve(image, boxes, proposals, label_ids, reviewer, now):
    rows, decisions, used = [], [], set()
    for index, box in enumerate(boxes):
        rect = _valid_rect(image, box, index)
        if box.label_id not in label_ids:
            raise ReviewValidationError(
                f"boxes[{index}].label", f"Box {index + 1}: label {box.label_id} is not one of this "
                "project's labels."
            )
        proposal = _proposal_for(box, proposals, used, index)
        row = Box(image=image, label_id=box.label_id, left=rect.left, top=rect.top, width=rect.width,
                  height=rect.height, origin=Box.Origin.ADDED, reviewer=reviewer, created_at=now)
        decision = {"proposal": None, "verdict": Box.Origin.ADDED.value, "label": box.label_id,
                    "box": list(rect)}
        if proposal is not None:
            _attach(row, decision, rect, proposal, image)
        rows.append(row)
        decisions.append(decision)
    return rows, decisions


def _valid_rect(image, box, index):
    rect = geometry.rounded(geometry.Rect(box.left, box.top, box.width, box.height))
    if rect.width <= MIN_SIDE or rect.height <= MIN_SIDE:
        raise ReviewValidationError(
            f"boxes[{index}].size", f"Box {index + 1} is too small: width and height must be more than "
            f"{MIN_SIDE} pixel after rounding (got {rect.width:g} x {rect.height:g})."
        )
    if not geometry.inside(rect, image.width, image.height):
        raise ReviewValidationError(
            f"boxes[{index}].position", f"Box {index + 1} ({rect.left:g}, {rect.top:g}, "
            f"{rect.width:g} x {rect.height:g}) is not inside the {image.width} x {image.height} image."
        )
    return rect


def _proposal_for(box, proposals, used, index):
    if box.proposal_id is None:
        return None
    proposal = proposals.get(box.proposal_id)
    if proposal is None:
        raise ReviewValidationError(
            f"boxes[{index}].proposal", f"Box {index + 1}: proposal {box.proposal_id} is not one of "
            "this image's proposals."
        )
    if proposal.pk in used:
        raise ReviewValidationError(
            f"boxes[{index}].proposal", f"Box {index + 1}: proposal {proposal.pk} is already used by "
            "another box."
        )
    used.add(proposal.pk)
    return proposal


def _attach(row, decision, rect, proposal, image):
    # Compare with the proposal as the editor showed it (clamped, whole pixels): an untouched
    # accept is then exactly IoU 1.0 and origin "accepted".
    shown = geometry.normalized_proposal(
        geometry.Rect(proposal.left, proposal.top, proposal.width, proposal.height),
        image.width, image.height,
    )
    row.iou = geometry.iou(rect, shown)
    row.proposal_id = proposal.pk
    row.relabeled = row.label_id != proposal.label_id
    same = shown == rect and not row.relabeled
    row.origin = Box.Origin.ACCEPTED if same else Box.Origin.ADJUSTED
    decision.update(proposal=proposal.pk, verdict=row.origin.value, confidence=proposal.confidence,
                    iou=row.iou, relabeled=row.relabeled)


def _rejections(proposals, used, hidden):
    return [
        {"proposal": p.pk, "verdict": "rejected", "label": p.label_id, "confidence": p.confidence,
         "hidden": p.pk in hidden}
        for p in proposals.values() if p.pk not in used
    ]


def _take_version(*, image, reviewer, version, no_objects, now, changed=False):
    """Claim the image's next version with one conditional UPDATE: a stale or double submit loses."""
    updated = (
        Image.objects.filter(pk=image.pk, version=version)
        .filter(lease_is_free(now) | Q(leased_by=reviewer))
        .update(
            version=F("version") + 1, status=Image.Status.REVIEWED, no_objects=no_objects,
            reviewed_by=reviewer, reviewed_at=now, leased_by=None, lease_expires_at=None,
            # The owner's list filters on the newest review's "changed" (Image.changed).
            changed=changed,
        )
    )
    if not updated:
        current = Image.objects.filter(pk=image.pk).values_list("version", flat=True).first()
        raise StaleReview() if current != version else LeaseLost()
    image.version = version + 1
    image.status, image.no_objects, image.changed = Image.Status.REVIEWED, no_objects, changed
    image.reviewed_by, image.reviewed_at = reviewer, now
    image.leased_by, image.lease_expires_at = None, None
