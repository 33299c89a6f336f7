"""Non-maximum suppression shared by Loupe's offline detectors (pure Python, no OpenCV)."""

from projects.geometry import iou

CONTAINED = 0.6


def same_object(a, b, threshold):
    """Overlapping by more than threshold IoU, or one box mostly inside the other: a partial match
    shifted along a wordmark overlaps little by IoU yet is the same object.

    Boxes are Rects; IoU is projects.geometry's. The containment test needs the overlap relative to
    the smaller box, which IoU does not give, hence the overlap computed here.
    """
    if iou(a, b) > threshold:
        return True
    overlap_w = min(a.right, b.right) - max(a.left, b.left)
    overlap_h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if overlap_w <= 0 or overlap_h <= 0:
        return False
    return overlap_w * overlap_h / min(a.width * a.height, b.width * b.height) > CONTAINED


def suppress(candidates, threshold, limit=None):
    """Greedy non-maximum suppression over (score, box, ...) tuples, best first."""
    kept = []
    for candidate in sorted(candidates, key=lambda item: -item[0]):
        if not any(same_object(candidate[1], other[1], threshold) for other in kept):
            kept.append(candidate)
            if limit is not None and len(kept) >= limit:
                break
    return kept
