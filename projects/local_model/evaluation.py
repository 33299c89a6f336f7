"""Scoring detections against the reviewed truth: IoU matching, F1, and per-label thresholds.

The rules follow Rekognition Custom Labels' evaluation: a detection is a true positive when it
has the truth's label and overlaps an unmatched truth box with IoU >= 0.5; detections are matched
in order of confidence, so a duplicate of an already found object counts as a false positive.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from projects import geometry
from projects.geometry import Rect

IOU_MATCH = 0.5
NO_EVIDENCE_THRESHOLD = 50.0


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other):
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self):
        # No truth and no detections is a perfect score; anything else uses the usual formula.
        if self.tp + self.fp + self.fn == 0:
            return 1.0
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)


@dataclass(frozen=True)
class Scored:
    """One detection after matching: whether it found an object, and how sure the model was."""

    label: str
    confidence: float
    hit: bool


@dataclass
class Matching:
    """All detections of a model over a set of images, each marked hit or miss, plus truth counts."""

    scored: list = field(default_factory=list)
    truth: dict = field(default_factory=lambda: defaultdict(int))  # label -> number of objects

    def counts(self, thresholds=None, label=None):
        """TP/FP/FN keeping detections at or above their label's threshold (0 when absent)."""
        thresholds = thresholds or {}
        counts = Counts()
        for item in self.scored:
            if label is not None and item.label != label:
                continue
            if item.confidence >= thresholds.get(item.label, 0):
                if item.hit:
                    counts.tp += 1
                else:
                    counts.fp += 1
        labels = [label] if label is not None else list(self.truth)
        counts.fn = sum(self.truth.get(name, 0) for name in labels) - counts.tp
        return counts

    def f1(self, thresholds=None):
        return self.counts(thresholds).f1


def match_image(truth, detections, *, min_iou=IOU_MATCH):
    """truth: [(label, box)]; detections: [Detection]. Returns [Scored] in confidence order."""
    unmatched = [(label, Rect(*box)) for label, box in truth]
    scored = []
    for detection in sorted(detections, key=lambda d: -d.confidence):
        found = Rect(*detection.box)
        best, best_iou = None, min_iou
        for index, (label, box) in enumerate(unmatched):
            overlap = geometry.iou(box, found) if label == detection.label else 0.0
            if overlap >= best_iou:
                best, best_iou = index, overlap
        if best is not None:
            unmatched.pop(best)
        scored.append(Scored(detection.label, detection.confidence, best is not None))
    return scored


def match_images(pairs, *, min_iou=IOU_MATCH):
    """pairs: iterable of (truth, detections) per image -> Matching over all of them."""
    matching = Matching()
    for truth, detections in pairs:
        for label, _ in truth:
            matching.truth[label] += 1
        matching.scored.extend(
            match_image(truth, [d for d in detections if d.box is not None], min_iou=min_iou)
        )
    return matching


def best_thresholds(matching, labels):
    """Per label, the confidence threshold that maximises that label's F1 (Rekognition's
    "assumed threshold"); ties go to the higher threshold, which shows reviewers fewer boxes."""
    thresholds = {}
    for label in labels:
        candidates = sorted({item.confidence for item in matching.scored if item.label == label})
        best_value, best_f1 = 100.0, -1.0
        for value in reversed(candidates):
            f1 = matching.counts({label: value}, label=label).f1
            if f1 > best_f1:
                best_value, best_f1 = value, f1
        thresholds[label] = round(best_value, 2)
    return thresholds


def validation_thresholds(matching, labels):
    """Per label, the threshold to ship, chosen on validation detections (never the test set).

    The F1-maximising confidence on validation is where the last kept detection sits; the threshold
    goes halfway down to the next detection below it, so a test detection a little weaker than the
    weakest validation hit is not lost on a knife edge. A label with no validation detections gets
    NO_EVIDENCE_THRESHOLD (nothing to choose from: the model's own boundary, 50).
    """
    thresholds = best_thresholds(matching, labels)
    for label in labels:
        if not any(item.label == label for item in matching.scored):
            thresholds[label] = NO_EVIDENCE_THRESHOLD
            continue
        below = [item.confidence for item in matching.scored
                 if item.label == label and item.confidence < thresholds[label]]
        if below:
            thresholds[label] = round((thresholds[label] + max(below)) / 2, 2)
    return thresholds


def fold_of(index, folds):
    """Which cross-validation fold an image (by its position) falls in: interleaved, deterministic."""
    return index % folds


def cross_validated_matching(samples, learn, detect, *, folds=2, progress=None):
    """Detections of models that never saw the image, over every training image.

    samples: [(pixels, truth)]; learn(samples) -> model; detect(pixels, model) -> [Detection].
    Each fold's images are scored by a model learned from the other folds, so thresholds chosen on
    the result are chosen without the held-out set and without grading a model on its own lessons.
    """
    folds = max(2, min(folds, len(samples)))
    pairs = []
    for fold in range(folds):
        learn_from = [s for i, s in enumerate(samples) if fold_of(i, folds) != fold]
        scored = [s for i, s in enumerate(samples) if fold_of(i, folds) == fold]
        if not scored or not any(truth for _, truth in learn_from):
            continue
        model = learn(learn_from)
        pairs.extend((truth, detect(pixels, model)) for pixels, truth in scored)
        if progress:
            progress(fold + 1, folds)
    return match_images(pairs)


def honest_figures(validation, test, labels):
    """Thresholds from validation; F1, precision, recall measured on test with them; beside it the
    F1 at thresholds tuned on test itself (how Rekognition reports: comparable, but optimistic)."""
    thresholds = validation_thresholds(validation, labels)
    counts = test.counts(thresholds)
    tuned = best_thresholds(test, labels)
    tuned_counts = test.counts(tuned)
    return {
        "thresholds": thresholds,
        "f1": round(counts.f1, 4), "precision": round(counts.precision, 4),
        "recall": round(counts.recall, 4),
        "f1_tuned_on_test": round(tuned_counts.f1, 4),
        "precision_tuned_on_test": round(tuned_counts.precision, 4),
        "recall_tuned_on_test": round(tuned_counts.recall, 4),
        "thresholds_tuned_on_test": tuned,
    }
