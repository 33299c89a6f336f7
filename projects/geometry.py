"""Box geometry in pixels of the original image: rounding, clamping and overlap.

Reviewed boxes are stored on whole pixels, the precision the manifest carries, so "the reviewer
accepted the proposal untouched" is an exact comparison rather than a float tolerance. There is
one rounding rule, `pixel()` (half up), used by the editor payload, the review service, the
detector and the manifest, so a box is saved and exported on the same pixels.
"""

import math
from typing import NamedTuple


class Rect(NamedTuple):
    left: float
    top: float
    width: float
    height: float

    @property
    def right(self):
        return self.left + self.width

    @property
    def bottom(self):
        return self.top + self.height


def pixel(value):
    """The one rounding rule: half up (10.5 -> 11, -0.5 -> 0), never Python's half-to-even."""
    return math.floor(value + 0.5)


def rounded(rect):
    """Round the edges (not the size) so a box keeps its right/bottom edge when moved."""
    left, top = pixel(rect.left), pixel(rect.top)
    right, bottom = pixel(rect.right), pixel(rect.bottom)
    return Rect(float(left), float(top), float(right - left), float(bottom - top))


def frame_pixels(rect, frame_width, frame_height):
    """Integer (left, top, width, height) inside the frame, at least 1 px wide and high: what a
    manifest line carries. Edges are rounded (not the size), then clamped."""
    x0, y0, x1, y1 = (
        min(max(pixel(value), 0), limit)
        for value, limit in ((rect[0], frame_width), (rect[1], frame_height),
                             (rect[0] + rect[2], frame_width), (rect[1] + rect[3], frame_height))
    )
    if x1 <= x0:
        x0, x1 = (x0, x0 + 1) if x0 < frame_width else (frame_width - 1, frame_width)
    if y1 <= y0:
        y0, y1 = (y0, y0 + 1) if y0 < frame_height else (frame_height - 1, frame_height)
    return x0, y0, x1 - x0, y1 - y0


def clamped(rect, width, height):
    """The part of rect inside a width x height frame (possibly empty)."""
    left = min(max(rect.left, 0.0), width)
    top = min(max(rect.top, 0.0), height)
    right = min(max(rect.right, 0.0), width)
    bottom = min(max(rect.bottom, 0.0), height)
    return Rect(left, top, max(right - left, 0.0), max(bottom - top, 0.0))


def clip_to_frame(rect, width, height):
    """The part of rect inside the frame, or None when nothing of it is (a model's box may overhang
    the image; a box wholly outside it is no box at all)."""
    part = clamped(rect, width, height)
    return part if part.width > 0 and part.height > 0 else None


def normalized_proposal(rect, width, height):
    """A proposal as the editor shows it: models may overhang the frame, the truth may not."""
    return rounded(clamped(rect, width, height))


def inside(rect, width, height):
    return rect.left >= 0 and rect.top >= 0 and rect.right <= width and rect.bottom <= height


def iou(a, b):
    """Intersection over union of two (left, top, width, height) boxes: Rects or plain tuples."""
    a_left, a_top, a_width, a_height = a
    b_left, b_top, b_width, b_height = b
    overlap_w = min(a_left + a_width, b_left + b_width) - max(a_left, b_left)
    overlap_h = min(a_top + a_height, b_top + b_height) - max(a_top, b_top)
    if overlap_w <= 0 or overlap_h <= 0:
        return 0.0
    overlap = overlap_w * overlap_h
    union = a_width * a_height + b_width * b_height - overlap
    return overlap / union if union > 0 else 0.0


def _finite(n):
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return False
    try:
        return math.isfinite(n)
    except OverflowError:  # an int beyond float range (JSON allows 10**400)
        return False


def all_finite(*numbers):
    return all(_finite(n) for n in numbers)
