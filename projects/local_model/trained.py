"""Loupe's trained offline detector: HOG features and a linear classifier (dlib's structural SVM
object detector), one per label and aspect group, learned on the CPU from the reviewed boxes with
nothing pretrained or downloaded.

dlib's trainer scans every window of every training image at every pyramid level, so each image's
background is mined for hard negatives exactly (the structural SVM keeps the windows that score
highest without being an object). Training copies of the images are augmented (colour channels
swapped, contrast and brightness jitter, blur, a rescale), which is what lets a model learned from
8 images find a mark in a colour scheme or at a size it has not seen.

Scale: HOG windows are WINDOW_SIDE pixels on their long side. Each detector works on the image
rescaled so its label's smallest training box (shrunk by SIZE_MARGIN) fills a window; dlib's own
pyramid (steps of 5/6) covers the larger sizes. Detectors sharing a scale run together on one
feature pyramid (run_multiple); boxes of all detectors are then merged by non-maximum suppression.

Confidence is the classifier's margin through a logistic: 50 at the SVM's own boundary.
"""

import io
import json
import math
import os
import tempfile
from dataclasses import dataclass

import cv2
import numpy as np

from projects.detections import Detection
from projects.geometry import Rect, clamped
from projects.local_model.nms import suppress

FORMAT = "loupe-hog-1"
WINDOW_SIDE = 56
# Smallest object searched relative to the smallest training box (long side).
SIZE_MARGIN = 1.25
MAX_UPSCALE = 1.6
# Images are never scanned larger than this on their long side (keeps a 1024 px image fast).
MAX_SCAN_SIDE = 1700
# A label's boxes split into two aspect groups when their width/height ratios span more than this.
ASPECT_SPLIT = 1.6
C = 4.0
EPSILON = 0.05
ADJUST_THRESHOLD = -1.0
CONFIDENCE_SLOPE = 2.5
NMS_IOU = 0.3
CROSS_LABEL_IOU = 0.5
MAX_DETECTIONS_PER_LABEL = 10
AUGMENT_COPIES = 1
THREADS = int(os.environ.get("LOUPE_TRAIN_THREADS", "2"))


@dataclass(frozen=True)
class Part:
    label: str
    scale: float  # image scale the detector works at
    blob: bytes  # dlib's serialised simple_object_detector


@dataclass
class HogModel:
    parts: tuple
    _loaded: list | None = None

    @property
    def labels(self):
        return sorted({part.label for part in self.parts})

    def describe(self):
        counts = ", ".join(f"{sum(p.label == label for p in self.parts)} {label}" for label in self.labels)
        return f"HOG + linear SVM, detectors: {counts}"

    def detectors(self):
        if self._loaded is None:
            self._loaded = [_deserialise(part.blob) for part in self.parts]
        return self._loaded

    def to_bytes(self):
        meta = {"format": FORMAT, "parts": [{"label": p.label, "scale": p.scale} for p in self.parts]}
        arrays = {f"d{i}": np.frombuffer(p.blob, np.uint8) for i, p in enumerate(self.parts)}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(meta)), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_meta(cls, meta, archive):
        return cls(tuple(Part(item["label"], float(item["scale"]), archive[f"d{i}"].tobytes())
                         for i, item in enumerate(meta["parts"])))


def _deserialise(blob):
    import dlib

    with tempfile.NamedTemporaryFile(suffix=".svm", delete=False) as handle:
        handle.write(blob)
    try:
        return dlib.simple_object_detector(handle.name)
    finally:
        os.unlink(handle.name)


def _serialise(found):
    with tempfile.NamedTemporaryFile(suffix=".svm", delete=False) as handle:
        name = handle.name
    try:
        found.save(name)
        with open(name, "rb") as stored:
            return stored.read()
    finally:
        os.unlink(name)


def decode(data):
    """Image bytes -> RGB uint8 array (dlib's order); ImageProposalError when not an image."""
    from projects.detections import ImageProposalError

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ImageProposalError("InvalidImageFormat", "the file is not an image OpenCV can read")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


# -- training ----------------------------------------------------------------------------------------

def aspect_groups(boxes):
    """Split a label's boxes [(w, h)] by aspect ratio: [list of indices], one or two groups."""
    ratios = [math.log(max(w, 1) / max(h, 1)) for w, h in boxes]
    order = sorted(range(len(boxes)), key=lambda i: ratios[i])
    if len(boxes) < 6 or ratios[order[-1]] - ratios[order[0]] < math.log(ASPECT_SPLIT):
        return [order]
    gaps = [(ratios[order[k + 1]] - ratios[order[k]], k) for k in range(2, len(order) - 3)]
    if not gaps:
        return [order]
    _, cut = max(gaps)
    return [order[:cut + 1], order[cut + 1:]]


def _scale_for(smallest_side, image_side):
    scale = min(MAX_UPSCALE, WINDOW_SIDE * SIZE_MARGIN / max(smallest_side, 1.0))
    return min(scale, MAX_SCAN_SIDE / image_side)


def augmented(samples, rng):
    """The samples plus AUGMENT_COPIES jittered copies of each (boxes follow the rescale)."""
    out = list(samples)
    for pixels, truth in samples:
        for _ in range(AUGMENT_COPIES):
            copy = pixels[..., rng.permutation(3)].astype(np.float32)
            copy = copy * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
            if rng.random() < 0.5:
                copy = 255 - copy if rng.random() < 0.3 else copy
            copy = np.clip(copy, 0, 255).astype(np.uint8)
            if rng.random() < 0.5:
                copy = cv2.GaussianBlur(copy, (0, 0), rng.uniform(0.6, 1.6))
            factor = float(rng.uniform(0.8, 1.25))
            size = (max(1, round(copy.shape[1] * factor)), max(1, round(copy.shape[0] * factor)))
            copy = cv2.resize(copy, size, interpolation=cv2.INTER_AREA)
            out.append((copy, [(label, tuple(v * factor for v in box)) for label, box in truth]))
    return out


def learn(samples, progress=None, *, seed=0):
    """samples: [(RGB pixels, [(label, box)])] -> HogModel."""
    import dlib

    rng = np.random.default_rng(seed)
    samples = augmented(samples, rng)
    by_label = {}
    for index, (_pixels, truth) in enumerate(samples):
        for label, box in truth:
            if box[2] >= 6 and box[3] >= 6:
                by_label.setdefault(label, []).append((index, box))
    jobs = []
    for label in sorted(by_label):
        found = by_label[label]
        for group in aspect_groups([(box[2], box[3]) for _, box in found]):
            jobs.append((label, [found[i] for i in group]))
    parts = []
    for done, (label, members) in enumerate(jobs, start=1):
        part = _train_part(dlib, samples, label, members)
        if part is not None:
            parts.append(part)
        if progress:
            progress(done, len(jobs))
    return HogModel(tuple(parts))


def _train_part(dlib, samples, label, members):
    sides = sorted(max(box[2], box[3]) for _, box in members)
    smallest = sides[max(0, len(sides) // 20)]
    widths = np.array([box[2] for _, box in members], float)
    heights = np.array([box[3] for _, box in members], float)
    aspect = float(np.exp(np.median(np.log(widths / heights))))
    if aspect >= 1:
        win_w, win_h = WINDOW_SIDE, max(16, round(WINDOW_SIDE / aspect))
    else:
        win_w, win_h = max(16, round(WINDOW_SIDE * aspect)), WINDOW_SIDE
    chosen = {}
    for index, box in members:
        chosen.setdefault(index, []).append(box)
    # Every image takes part: those without this group's boxes are background to mine.
    images, boxes = [], []
    scale = None
    for pixels, _truth in samples:
        image_side = max(pixels.shape[:2])
        scale_here = _scale_for(smallest, image_side)
        scale = scale_here if scale is None else min(scale, scale_here)
    for index, (pixels, truth) in enumerate(samples):
        resized = _rescale(pixels, scale)
        own = chosen.get(index, [])
        # Boxes of this label in another aspect group are neither objects nor background here:
        # grey them out so they are not mined as negatives.
        others = [box for name, box in truth if name == label and box not in own]
        if others:
            resized = resized.copy()
            for box in others:
                x, y, w, h = (int(round(v * scale)) for v in box)
                resized[max(0, y):y + h, max(0, x):x + w] = 127
        rects = []
        for x, y, w, h in own:
            if min(w, h) * scale < 8:
                continue
            rects.append(dlib.rectangle(int(round(x * scale)), int(round(y * scale)),
                                        int(round((x + w) * scale)) - 1, int(round((y + h) * scale)) - 1))
        images.append(np.ascontiguousarray(resized))
        boxes.append(rects)
    if not any(boxes):
        return None
    options = dlib.simple_object_detector_training_options()
    options.detection_window_size = int(win_w * win_h)
    options.C = C
    options.epsilon = EPSILON
    options.num_threads = THREADS
    options.add_left_right_image_flips = False
    options.upsample_limit = 0
    options.be_verbose = False
    images, boxes = _drop_impossible(dlib, images, boxes, win_w, win_h)
    try:
        found = dlib.train_simple_object_detector(images, boxes, options)
    except RuntimeError:
        return None
    return Part(label, float(scale), _serialise(found))


def _drop_impossible(dlib, images, boxes, win_w, win_h):
    """dlib refuses boxes no window can cover (too small, or of a far-off aspect): drop those."""
    window_area = win_w * win_h
    kept = []
    for rects in boxes:
        kept.append([r for r in rects if r.width() * r.height() >= 0.5 * window_area
                     and 0.55 < (r.width() / r.height()) / (win_w / win_h) < 1.8])
    return images, kept


def _rescale(pixels, scale):
    if abs(scale - 1.0) < 1e-3:
        return pixels
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(pixels, size, interpolation=interpolation)


# -- detection ---------------------------------------------------------------------------------------

def confidence(score):
    return round(100.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * score)), 2)


def detect(pixels, model):
    """All detections in an RGB image, one box per object, best first."""
    import dlib

    detectors = model.detectors()
    by_scale = {}
    for part, found in zip(model.parts, detectors, strict=True):
        by_scale.setdefault(part.scale, []).append((part, found))
    candidates = {}
    for scale, members in by_scale.items():
        image = np.ascontiguousarray(_rescale(pixels, scale))
        rects, scores, which = dlib.simple_object_detector.run_multiple(
            [found for _, found in members], image, upsample_num_times=0, adjust_threshold=ADJUST_THRESHOLD
        )
        for rect, score, index in zip(rects, scores, which, strict=True):
            label = members[index][0].label
            box = Rect(rect.left() / scale, rect.top() / scale, (rect.width()) / scale,
                       (rect.height()) / scale)
            candidates.setdefault(label, []).append((confidence(score), box, label))
    found = []
    for items in candidates.values():
        found.extend(suppress(items, NMS_IOU, MAX_DETECTIONS_PER_LABEL))
    height, width = pixels.shape[:2]
    return [
        Detection(label, sure, tuple(round(value, 1) for value in clamped(box, width, height)))
        for sure, box, label in suppress(found, CROSS_LABEL_IOU)
    ]
