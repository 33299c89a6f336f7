"""Box geometry in pixels of the original image: rounding, clamping and overlap.

Reviewed boxes are stored on whole pixels, the precision the manifest carries, so "the reviewer
accepted the proposal untouched" is an exact comparison rather than a float tolerance.
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


def rounded(rect):
    """Round the edges (not the size) so a box keeps its right/bottom edge when moved."""
    left, top = round(rect.left), round(rect.top)
    right, bottom = round(rect.right), round(rect.bottom)
    return Rect(float(left), float(top), float(right - left), float(bottom - top))


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
    overlap_w = min(a.right, b.right) - max(a.left, b.left)
    overlap_h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if overlap_w <= 0 or overlap_h <= 0:
        return 0.0
    overlap = overlap_w * overlap_h
    union = a.width * a.height + b.width * b.height - overlap
    return overlap / union if union > 0 else 0.0


def all_finite(*numbers):
    return all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n)
               for n in numbers)
