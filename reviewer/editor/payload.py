"""What the editor is given about an image: its file, size, version, boxes and proposals, progress.

The same dictionary is embedded in the review page and returned by submit/skip for the next image,
so the browser can swap images without a page load.
"""

from django.urls import reverse

from projects import geometry
from projects.models import LABEL_COLORS, Proposal
from reviewer.models import Box
from reviewer.queue import holds_lease, peek_next, progress


def image_payload(*, image, user, now, editable):
    iteration = image.iteration
    hint = peek_next(iteration=iteration, user=user, exclude_id=image.pk, now=now) if editable else None
    return {
        "id": image.pk,
        "name": image.name,
        "width": image.width,
        "height": image.height,
        "version": image.version,
        # The model whose proposals these items are: sent back on submit, so the save is judged
        # against what this page showed even if a proposal run switches the iteration's model.
        "model_version": iteration.shown_model_id,
        "status": image.status,
        "no_objects": image.no_objects,
        "editable": editable,
        "lease_expires_at": image.lease_expires_at.isoformat() if editable else None,
        "file_url": reverse("projects:image-file", args=[image.pk]),
        "page_url": reverse("reviewer:image", args=[image.pk]),
        "submit_url": reverse("reviewer:submit", args=[image.pk]),
        "skip_url": reverse("reviewer:skip", args=[image.pk]),
        "lease_url": reverse("reviewer:lease", args=[image.pk]),
        "prefetch_url": reverse("projects:image-file", args=[hint.pk]) if hint else None,
        "items": editor_items(image),
        "progress": progress(iteration=iteration),
    }


def editor_items(image):
    """Saved boxes first (decided), then the current model's proposals no box came from.

    On a pending image those proposals are undecided; on a reviewed one the reviewer rejected them,
    and correcting the image can accept them again.
    """
    model_version_id = image.iteration.shown_model_id
    # The current model's boxed proposals, read once: a box from one of them is shown as that
    # proposal decided; boxes from an older model's proposals, or imported ones, as boxes someone drew.
    proposals = list(Proposal.objects.filter(
        image=image, model_version_id=model_version_id, left__isnull=False
    ).order_by("-confidence", "id")) if model_version_id is not None else []
    shown = {proposal.pk: proposal for proposal in proposals}
    boxes = list(Box.objects.filter(image=image).order_by("id"))
    items = [_box_item(box, image, shown.get(box.proposal_id)) for box in boxes]
    used = {box.proposal_id for box in boxes}
    undecided = "undecided" if image.status == image.Status.PENDING else "rejected"
    items += [_proposal_item(p, image, undecided) for p in proposals if p.pk not in used]
    return items


def _box_item(box, image, proposal):
    item = {"proposal": None, "label": box.label_id, "state": Box.Origin.ADDED.value, "confidence": None,
            "rect": [box.left, box.top, box.width, box.height], "original": None}
    if proposal is not None:
        shown = _proposal_item(proposal, image, box.origin)
        item.update(proposal=proposal.pk, state=box.origin, confidence=shown["confidence"],
                    original=shown["original"])
    return item


def _proposal_item(proposal, image, state):
    rect = geometry.normalized_proposal(
        geometry.Rect(proposal.left, proposal.top, proposal.width, proposal.height), image.width, image.height
    )
    return {"proposal": proposal.pk, "label": proposal.label_id, "state": state,
            # Full precision: thresholds have two decimals, and a rounded confidence could fall
            # below its own label's threshold (59.11 shown as 59.1) and be hidden.
            "confidence": proposal.confidence, "rect": list(rect),
            "original": {"label": proposal.label_id, "rect": list(rect)}}


def labels_payload(iteration):
    model = iteration.shown_model if iteration.shown_model_id else None
    payload, seen = [], set()
    for index, label in enumerate(iteration.project.labels.order_by("order", "name")):
        # Labels left on the default colour would be indistinguishable on the image: give repeats
        # a palette colour for display (the stored colour is unchanged).
        color = label.color if label.color not in seen else LABEL_COLORS[index % len(LABEL_COLORS)]
        seen.add(color)
        payload.append({"id": label.pk, "name": label.name, "color": color, "hotkey": label.hotkey,
                        # No model shown: nothing to filter. A model without a threshold for the
                        # label: DEFAULT_THRESHOLD, as the export and the simulated reviewers use.
                        "threshold": _threshold(model.threshold_for(label.pk)) if model else 0.0})
    return payload


def _threshold(value):
    return float(value) if geometry.all_finite(value) and 0 <= value <= 100 else 0.0


def is_editable(image, user, now):
    return holds_lease(image, user, now)
