"""Splitting a manifest into training and test manifests for Rekognition.

The split is decided by a hash of each image's source-ref, so the same image always lands on the
same side and re-exports are stable. A short repair pass then moves the fewest images needed so
that every label with at least two images appears on both sides (Rekognition refuses a test set
covering under half of the training labels), never taking a label's last image from a side.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from projects.manifests.lines import line_labels, parse_line


class SplitError(Exception):
    """The split cannot be made as asked; the message says what to change."""


@dataclass
class SplitResult:
    train: int = 0
    test: int = 0
    moved: int = 0
    notes: list = field(default_factory=list)

    def as_dict(self):
        return {"train": self.train, "test": self.test, "moved": self.moved, "notes": list(self.notes)}


def image_score(source_ref):
    """A stable number in [0, 1) for an image: below the test fraction means "test"."""
    digest = hashlib.sha256(source_ref.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _Entry:
    score: float
    labels: frozenset
    test: bool


class SplitPlanner:
    """Collects each manifest line's source-ref and labels, in file order, then plans the split.

    Exports feed it while they write the manifest, so the plan needs no pass over the file.
    """

    def __init__(self, *, test_fraction):
        if not 0 < test_fraction < 1:
            raise SplitError(f"the test fraction must be between 0 and 1 (e.g. 0.2); got {test_fraction}")
        self.test_fraction = test_fraction
        self._entries = []
        self._interned = {}

    def add(self, source_ref, labels):
        labels = frozenset(labels)
        # Most lines share a handful of label sets: keep one copy of each.
        labels = self._interned.setdefault(labels, labels)
        score = image_score(source_ref)
        self._entries.append(_Entry(score, labels, score < self.test_fraction))

    def add_line(self, text):
        obj = parse_line(text)
        if obj is not None:
            self.add(obj.get("source-ref", ""), line_labels(obj))

    def plan(self):
        """([True if line i goes to test], notes about labels, number of images moved)."""
        notes, moved = _repair(self._entries)
        return [entry.test for entry in self._entries], notes, moved


def plan_split(lines, *, test_fraction):
    """[True if line i goes to test] for the manifest lines, plus notes about labels."""
    planner = SplitPlanner(test_fraction=test_fraction)
    for text in lines:
        planner.add_line(text)
    return planner.plan()


def _repair(entries):
    counts = {True: Counter(), False: Counter()}
    for entry in entries:
        counts[entry.test].update(entry.labels)
    everywhere = counts[True] + counts[False]
    notes = []
    moved = 0
    for label in sorted(everywhere):
        if everywhere[label] < 2:
            notes.append(f"label {label!r} has one image only, so it is in one of the two sets only")
            continue
        for side in (True, False):
            if counts[side][label]:
                continue
            entry = _movable(entries, label, source_side=not side, counts=counts)
            if entry is None:
                notes.append(f"label {label!r} could not be put in the {_name(side)} set without "
                             f"taking another label's last image from the {_name(not side)} set")
                continue
            counts[entry.test].subtract(entry.labels)
            entry.test = side
            counts[side].update(entry.labels)
            moved += 1
    return notes, moved


def _movable(entries, label, *, source_side, counts):
    """The image closest to the split's threshold whose move keeps every label on its side."""
    candidates = [e for e in entries if e.test == source_side and label in e.labels]
    # Test images with the highest score and train images with the lowest are nearest the line.
    candidates.sort(key=lambda e: -e.score if source_side else e.score)
    for entry in candidates:
        if all(counts[source_side][other] >= 2 for other in entry.labels):
            return entry
    return None


def _name(side):
    return "test" if side else "training"


def write_split(*, lines, sides, train_out, test_out, on_line=None):
    """Write each non-blank line to train_out or test_out as sides says; returns the counts.

    on_line(to_test, text): called for each line written, e.g. to validate the two halves.
    """
    result = SplitResult()
    kept = (text for text in lines if text.strip())
    for to_test, text in zip(sides, kept, strict=True):
        text = text if text.endswith("\n") else text + "\n"
        (test_out if to_test else train_out).write(text)
        if on_line is not None:
            on_line(to_test, text)
        if to_test:
            result.test += 1
        else:
            result.train += 1
    return result
