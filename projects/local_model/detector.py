"""Loupe's offline detector: exemplar template matching, on the CPU, with nothing to download.

Training crops every reviewed box (an exemplar), shrunk so its long side is TEMPLATE_SIDE pixels,
and measures each one on the other training images: how strongly it matches clutter (its
background score, which its matches are later read against) and which other objects it finds.
A greedy cover then keeps, per label, the exemplars that together find the most training objects.
Detection searches a pyramid of the image: at each level, objects of one size appear TEMPLATE_SIDE
pixels long, so the small exemplars are matched (normalised cross-correlation) against a downscaled
image, which is what keeps a 1024 px image well under a second. More reviewed boxes mean exemplars
covering more of the ways a mark can look (style, tilt, blur, occlusion) and better-measured
clutter, which is why each iteration's model is better than the last.
"""

import io
import json
from dataclasses import dataclass, replace

import cv2
import numpy as np
from django.core.files.storage import default_storage

from projects.detections import UNCERTAIN_BAND, Detection, ImageProposalError, ModelNotReady
from projects.geometry import Rect, clamped, iou, pixel
from projects.images.storage import read_image_bytes
from projects.local_model import trained
from projects.local_model.nms import CONTAINED, same_object, suppress  # noqa: F401 (re-exported)
from projects.models import ModelVersion

TEMPLATE_SIDE = 24
MAX_EXEMPLARS_PER_LABEL = 16
LEVEL_RATIO = 1.2
# Object sizes searched: the training boxes' range widened by this factor on both sides.
SIZE_MARGIN = 1.3
MIN_OBJECT_SIDE = 16
PEAK_FLOOR = 0.4
TRAINING_FLOOR = 0.3
# An exemplar seen on no other image (a single training image) assumes this clutter score.
DEFAULT_BACKGROUND = 0.6
BACKGROUND_QUANTILE = 0.9
MAX_BACKGROUND = 0.9
MIN_CONFIDENCE = 20
NMS_IOU = 0.3
# One object, one label: a weaker box of another label on the same spot is dropped.
CROSS_LABEL_IOU = 0.6
MAX_DETECTIONS_PER_LABEL = 10
# Boxes this many confidence points below the best one still shape the fused box.
FUSE_MARGIN = 10
PEAK_KERNEL = np.ones((5, 5), np.uint8)
MIN_WINDOW_STD = 3.0
# Measuring an exemplar on this many other training images is enough to know its clutter score.
MEASURE_IMAGES = 12


# eq=False: exemplars are compared by identity, never by their pixel arrays.
@dataclass(frozen=True, eq=False)
class Exemplar:
    label: str
    pixels: np.ndarray  # grey uint8, long side TEMPLATE_SIDE
    source_side: float  # long side of the box it came from, in original pixels
    # The correlation this exemplar reaches on things that are not its label (measured on the
    # other training images): scores are read relative to it, so an exemplar that matches
    # clutter easily needs a closer match to be believed.
    background: float = DEFAULT_BACKGROUND
    source: int = -1  # index of its training image, only while training


@dataclass(frozen=True)
class ExemplarSet:
    exemplars: tuple[Exemplar, ...]
    # label -> (smallest, largest) long side of every training box, kept or not.
    sides: dict

    @property
    def labels(self):
        return sorted({exemplar.label for exemplar in self.exemplars})

    def describe(self):
        counts = ", ".join(f"{len(self.for_label(label))} {label}" for label in self.labels)
        return f"template matcher, exemplars: {counts}"

    def for_label(self, label):
        return [exemplar for exemplar in self.exemplars if exemplar.label == label]

    def size_range(self, label):
        return search_range(*self.sides[label])

    def to_bytes(self):
        arrays = {f"e{index}": exemplar.pixels for index, exemplar in enumerate(self.exemplars)}
        meta = [{"label": e.label, "source_side": e.source_side, "background": e.background}
                for e in self.exemplars]
        buffer = io.BytesIO()
        header = json.dumps({"exemplars": meta, "sides": self.sides})
        np.savez_compressed(buffer, meta=np.array(header), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data):
        # Exemplar files hold plain arrays only: refusing pickles keeps a stored file inert.
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            header = json.loads(str(archive["meta"]))
            exemplars = tuple(
                Exemplar(item["label"], archive[f"e{index}"], float(item["source_side"]),
                         float(item["background"]))
                for index, item in enumerate(header["exemplars"])
            )
        return cls(exemplars, {label: tuple(pair) for label, pair in header["sides"].items()})


class Pyramid:
    """Downscaled copies of one grey image, made on first use and shared by all exemplars."""

    def __init__(self, grey):
        self.grey = grey
        self.side = max(grey.shape)
        self._levels = {}

    def level(self, scale):
        if scale not in self._levels:
            size = (max(1, round(self.grey.shape[1] * scale)), max(1, round(self.grey.shape[0] * scale)))
            self._levels[scale] = cv2.resize(self.grey, size, interpolation=cv2.INTER_AREA)
        return self._levels[scale]


def decode_grey(data):
    """Image bytes -> grey uint8 array; ImageProposalError when the bytes are not an image."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise ImageProposalError("InvalidImageFormat", "the file is not an image OpenCV can read")
    return pixels


def crop_exemplar(grey, box, label, source=-1):
    """The box's pixels shrunk to TEMPLATE_SIDE on their long side; None when the box is unusable."""
    left, top, width, height = (pixel(value) for value in box)
    left, top = max(left, 0), max(top, 0)
    crop = grey[top:top + height, left:left + width]
    if crop.shape[0] < 4 or crop.shape[1] < 4:
        return None
    scale = TEMPLATE_SIDE / max(crop.shape)
    size = (max(4, round(crop.shape[1] * scale)), max(4, round(crop.shape[0] * scale)))
    pixels = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    if float(pixels.std()) < 2.0:
        return None  # a flat crop correlates with noise everywhere
    return Exemplar(label, pixels, float(max(crop.shape)), source=source)


def search_range(smallest, largest):
    """Object sizes (long side) searched for a label whose training boxes span smallest..largest."""
    return max(MIN_OBJECT_SIDE, smallest / SIZE_MARGIN), largest * SIZE_MARGIN


def levels(size_range, image_side):
    """Pyramid scales: at scale s an object of long side TEMPLATE_SIDE / s fills a template."""
    smallest, largest = size_range
    largest = min(largest, image_side)
    side, scales = smallest, []
    while side <= largest * LEVEL_RATIO:
        scales.append(min(1.0, TEMPLATE_SIDE / side))
        side *= LEVEL_RATIO
    return sorted(set(scales), reverse=True)


def exemplar_peaks(pyramid, exemplar, scales, floor):
    """Local maxima of the exemplar's correlation over every level -> [(score, box)]."""
    found = []
    template = exemplar.pixels
    for scale in scales:
        level = pyramid.level(scale)
        if template.shape[0] > level.shape[0] or template.shape[1] > level.shape[1]:
            continue
        response = cv2.matchTemplate(level, template, cv2.TM_CCOEFF_NORMED)
        found.extend(_peaks(response, level, template.shape, scale, floor))
    return found


def _peaks(response, level, template_shape, scale, floor):
    dilated = cv2.dilate(response, PEAK_KERNEL)
    ys, xs = np.nonzero((response >= dilated) & (response >= floor))
    height, width = template_shape
    return [
        (float(response[y, x]), Rect(x / scale, y / scale, width / scale, height / scale))
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True)
        # OpenCV scores a nearly flat window as a perfect match: no pattern, no object.
        if level[y:y + height, x:x + width].std() >= MIN_WINDOW_STD
    ]


def fuse(candidates, threshold, limit=None):
    """Non-maximum suppression whose kept box is the score-weighted mean of the near-best boxes it
    suppresses: exemplars that fit an object slightly differently agree on a better box."""
    fused = []
    for best in suppress(candidates, threshold, limit):
        group = [c for c in candidates
                 if c[0] >= best[0] - FUSE_MARGIN and iou(c[1], best[1]) > threshold]
        weights = np.array([c[0] for c in group], np.float64)
        boxes = np.array([c[1] for c in group], np.float64)
        box = Rect(*(float(v) for v in (boxes * weights[:, None]).sum(0) / weights.sum()))
        fused.append((best[0], box, *best[2:]))
    return fused


def confidence(score, background):
    """50 where the exemplar is as sure as it gets on clutter, 100 for a perfect match."""
    fraction = 0.5 + 0.5 * (score - background) / max(1.0 - background, 0.05)
    return round(100.0 * min(1.0, max(0.0, fraction)), 2)


# -- training: measure each exemplar on the other training images ----------------------------------

def learn(samples, progress=None):
    """samples: list of (grey array, [(label, box)]) -> ExemplarSet; progress(done, total) is
    called as exemplars are measured (the slow part)."""
    by_label = {}
    for index, (grey, boxes) in enumerate(samples):
        for label, box in boxes:
            exemplar = crop_exemplar(grey, box, label, source=index)
            if exemplar is not None:
                by_label.setdefault(label, []).append(exemplar)
    sides = {
        label: (min(e.source_side for e in found), max(e.source_side for e in found))
        for label, found in by_label.items()
    }
    pyramids = [Pyramid(grey) for grey, _ in samples]
    total, done, kept = sum(len(found) for found in by_label.values()), 0, []
    for label in sorted(by_label):
        size_range = search_range(*sides[label])
        measured = []
        for exemplar in by_label[label]:
            measured.append(_measure(exemplar, samples, pyramids, size_range))
            done += 1
            if progress:
                progress(done, total)
        kept.extend(_select(measured))
    return ExemplarSet(tuple(kept), sides)


def _measure(exemplar, samples, pyramids, size_range):
    """(exemplar with its clutter score, the other training objects it finds above that score)."""
    worst_clutter, hits = [], []
    for index in _measured_images(len(samples), exemplar.source):
        truth = [Rect(*box) for label, box in samples[index][1] if label == exemplar.label]
        peaks = exemplar_peaks(pyramids[index], exemplar, levels(size_range, pyramids[index].side),
                               TRAINING_FLOOR)
        clutter = [score for score, box in peaks if all(iou(box, t) < 0.3 for t in truth)]
        worst_clutter.append(max(clutter, default=TRAINING_FLOOR))
        for number, t in enumerate(truth):
            best = max((score for score, box in peaks if iou(box, t) >= 0.5), default=None)
            if best is not None:
                hits.append(((index, number), best))
    if not worst_clutter:
        return exemplar, set()
    background = float(np.quantile(worst_clutter, BACKGROUND_QUANTILE))
    found = {key for key, score in hits if score > background}
    return replace(exemplar, background=round(background, 4), source=-1), found


def _measured_images(count, source):
    """The other training images, spread evenly (and deterministically) when there are many."""
    others = [index for index in range(count) if index != source]
    step = max(1.0, len(others) / MEASURE_IMAGES)
    return sorted({others[int(k * step)] for k in range(min(len(others), MEASURE_IMAGES))})


def _select(measured):
    """Greedy cover: keep the exemplar finding the most training objects not found yet, so every
    look seen in training keeps a representative; fill up with those least fooled by clutter.
    Exemplars that match clutter as well as anything are dropped."""
    pool = [item for item in measured if item[0].background < MAX_BACKGROUND] or list(measured)
    pool.sort(key=lambda item: item[0].background)
    kept, covered = [], set()
    while pool and len(kept) < MAX_EXEMPLARS_PER_LABEL:
        best = max(pool, key=lambda item: len(item[1] - covered))
        pool.remove(best)
        kept.append(best[0])
        covered |= best[1]
    return kept


# -- detection -------------------------------------------------------------------------------------

def detect_grey(grey, exemplar_set, *, min_confidence=MIN_CONFIDENCE):
    """All detections in a grey image, one box per object, best first."""
    pyramid = Pyramid(grey)
    found = []
    for label in exemplar_set.labels:
        scales = levels(exemplar_set.size_range(label), pyramid.side)
        candidates = []
        for exemplar in exemplar_set.for_label(label):
            for score, box in exemplar_peaks(pyramid, exemplar, scales, PEAK_FLOOR):
                sure = confidence(score, exemplar.background)
                if sure >= min_confidence:
                    candidates.append((sure, box, label))
        found.extend(fuse(candidates, NMS_IOU, MAX_DETECTIONS_PER_LABEL))
    height, width = grey.shape
    return [
        Detection(label, sure, tuple(round(value, 1) for value in clamped(box, width, height)))
        for sure, box, label in suppress(found, CROSS_LABEL_IOU)
    ]


def load_model(data):
    """A stored local model of either format: the trained detector's files name their format
    (trained.FORMAT); template-matcher files from before have none and load as exemplars."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        header = json.loads(str(archive["meta"]))
        if isinstance(header, dict) and "format" in header:
            if header["format"] != trained.FORMAT:
                raise ModelNotReady(
                    f"the stored model has format {header['format']!r}, which this version of Loupe "
                    f"cannot read (it reads {trained.FORMAT!r} and template exemplars): train it again"
                )
            return trained.HogModel.from_meta(header, archive)
    return ExemplarSet.from_bytes(data)


def load_exemplars(model_version):
    if not model_version.artifact or not default_storage.exists(model_version.artifact):
        raise ModelNotReady(f"model {model_version.name} has no stored exemplars: train it first")
    with default_storage.open(model_version.artifact, "rb") as handle:
        return load_model(handle.read())


def decode_for(model, data):
    return trained.decode(data) if isinstance(model, trained.HogModel) else decode_grey(data)


def detect_with(model, pixels):
    if isinstance(model, trained.HogModel):
        return trained.detect(pixels, model)
    return detect_grey(pixels, model)


class LocalDetectorBackend:
    """The proposal backend of a local ModelVersion.

    Boxes down to UNCERTAIN_BAND below each label's threshold are returned: reviewers who lower
    the confidence filter see the near misses, and the queue's priority (uncertainty_score) counts them.
    """

    def __init__(self, model_version):
        if model_version.kind != ModelVersion.Kind.LOCAL or model_version.status != ModelVersion.Status.READY:
            raise ModelNotReady(f"model {model_version.name} is not a ready local model")
        self.model_version = model_version
        self.exemplars = load_exemplars(model_version)
        # Detections name their label; thresholds are kept by label id.
        self.label_ids = dict(model_version.project.labels.values_list("name", "pk"))

    def detect(self, image):
        try:
            data = read_image_bytes(image)
        except OSError as error:
            raise ImageProposalError("ImageUnreadable", str(error)) from error
        return self.detect_bytes(data)

    def detect_bytes(self, data):
        threshold_for = self.model_version.threshold_for
        return [
            detection for detection in detect_with(self.exemplars, decode_for(self.exemplars, data))
            if detection.confidence >= threshold_for(self.label_ids.get(detection.label)) - UNCERTAIN_BAND
        ]
