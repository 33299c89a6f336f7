"""Importing predictions made elsewhere as proposals, one JSON line per image.

Two line shapes are accepted:
- DetectCustomLabels output: {"source-ref": "s3://...", "CustomLabels": [...]}, ratios converted to
  pixels with the image's own width and height;
- a Ground Truth manifest line: its object-detection (or image-classification) attribute becomes
  proposals, confidences 0..1 scaled to 0..100.
Each line is imported whole or not at all; every line not imported is reported with its number.
Lines are read in batches of BATCH_SIZE: one lookup of their images, then one transaction of bulk
writes per batch; a batch whose bulk write fails is written again line by line.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import transaction

from projects.bulkrows import TableStatistics, insert_rows, update_rows
from projects.detections import Detection, InvalidDetection, check_detection
from projects.geometry import Rect, all_finite, clip_to_frame
from projects.manifests.lines import (
    CLASSIFICATION_TYPE,
    DETECTION_TYPE,
    LineError,
    parse_detection_attribute,
    parse_line,
    strip_rcl_keys,
)
from projects.models import Image, ModelVersion, Proposal, ProposalOutcome
from projects.proposals.rekognition import detections_from_custom_labels
from projects.proposals.runs import UNKNOWN_LABELS, store_detections, uncertainty_score

# Lines read and written per transaction.
BATCH_SIZE = 1000


@dataclass
class PredictionImportReport:
    lines: int = 0
    images: int = 0
    proposals: int = 0
    problems: list = field(default_factory=list)  # [(line number, why it was not imported)]
    notes: list = field(default_factory=list)  # [(line number, what was imported differently)]

    def summary(self):
        return (
            f"{self.images} images imported with {self.proposals} proposals from {self.lines} lines, "
            f"{len(self.problems)} lines not imported"
        )


def imported_model_version(*, project, name):
    """The model version predictions are imported under, created as 'imported' if new."""
    model_version, _ = ModelVersion.objects.get_or_create(
        project=project, name=name,
        defaults={"kind": ModelVersion.Kind.IMPORTED, "status": ModelVersion.Status.READY},
    )
    return model_version


def import_predictions(*, iteration, model_version, lines, attribute=None, batch_size=BATCH_SIZE):
    """Import an iterable of JSON lines (str or bytes); returns a PredictionImportReport."""
    labels = {label.name: label for label in iteration.project.labels.all()}
    report = PredictionImportReport()
    first_seen = {}
    context = {"iteration": iteration, "model_version": model_version, "labels": labels,
               "attribute": attribute, "report": report, "first_seen": first_seen}
    statistics = TableStatistics(Image, Proposal, ProposalOutcome)
    batch = []
    for number, raw in enumerate(lines, start=1):
        report.lines = number
        try:
            data = _read_line(raw)
        except LineError as error:
            report.problems.append((number, str(error)))
            continue
        if data is not None:
            batch.append((number, raw, data))
        if len(batch) >= batch_size:
            _import_batch(batch, **context)
            batch = []
            statistics.lines_read(number)
    if batch:
        _import_batch(batch, **context)
    statistics.finished(report.lines)
    if report.images:
        iteration.shown_model = model_version
        iteration.save(update_fields=["shown_model"])
    return report


def _read_line(raw):
    """The line's JSON object with a source-ref, or None for a blank line; raises LineError."""
    data = parse_line(raw)
    if data is None:
        return None
    data, _flagged = strip_rcl_keys(data)
    source = data.get("source-ref")
    if not isinstance(source, str) or not source:
        raise LineError("no source-ref")
    return data


def _import_batch(batch, *, iteration, model_version, labels, attribute, report, first_seen):
    """[(number, raw line, parsed object)]: one image lookup, one transaction of bulk writes."""
    sources = {data["source-ref"] for _number, _raw, data in batch}
    images = {
        source: _Target(pk, width, height)
        for source, pk, width, height in Image.objects.filter(iteration=iteration, source__in=sources)
        .order_by().values_list("source", "pk", "width", "height")
    }
    thresholds = _Thresholds(model_version)
    problems, notes = [], []
    per_image = {}  # image id -> (image, proposals, scored, skipped labels); a later line replaces
    counted = {}  # source -> the batch's last line of it (first_seen holds the earlier batches')
    stored = 0  # proposals of every line imported, those a later line replaced included
    for number, _raw, data in batch:
        source = data["source-ref"]
        image = images.get(source)
        try:
            if image is None:
                raise LineError(f"no image {source} in {iteration}")
            rows = None
            if attribute is None and "CustomLabels" in data:
                rows = _custom_labels_rows(data["CustomLabels"], image, model_version, labels, thresholds)
            if rows is None:
                detections = detections_from_line(
                    data, width=image.width, height=image.height, attribute=attribute)
                rows = _rows(image, model_version, detections, labels, thresholds)
            per_image[image.pk] = (image, *rows)
        except LineError as error:
            problems.append((number, str(error)))
            continue
        _, proposals, _scored, skipped = per_image[image.pk]
        stored += len(proposals)
        skipped = tuple(sorted(set(skipped)))
        replaced = counted.get(source) or first_seen.get(source)
        if replaced:
            notes.append((number, f"replaces the proposals of line {replaced} for {source}"))
        counted[source] = number
        if skipped:
            notes.append((number, f"skipped labels not in the project: {', '.join(skipped)}"))
    try:
        with transaction.atomic():
            _write(per_image.values(), model_version)
    except Exception:
        # Nothing of the batch was written: line by line, each in its own transaction, as before.
        for number, raw, _data in batch:
            try:
                _import_line(raw, number, iteration=iteration, model_version=model_version,
                             labels=labels, attribute=attribute, report=report, first_seen=first_seen)
            except LineError as error:
                report.problems.append((number, str(error)))
        report.problems.sort(key=lambda problem: problem[0])
        return
    report.images += sum(1 for source in counted if source not in first_seen)
    report.proposals += stored
    first_seen.update(counted)
    report.problems.extend(problems)
    report.notes.extend(notes)
    report.problems.sort(key=lambda problem: problem[0])
    report.notes.sort(key=lambda note: note[0])


class _Target(NamedTuple):
    """What a line needs of its image."""

    pk: int
    width: int
    height: int


class _Thresholds(dict):
    """The model version's threshold of each label id, read once."""

    def __init__(self, model_version):
        super().__init__()
        self.model_version = model_version

    def __missing__(self, label_id):
        self[label_id] = self.model_version.threshold_for(label_id)
        return self[label_id]


_NUMBERS = (int, float)
# Ratios beyond this are no box of any image; well within float range, so no overflow checks.
_RATIO_LIMIT = 1e9


def _custom_labels_rows(items, image, model_version, labels, thresholds):
    """What _rows gives for the detections of CustomLabels whose every item has a Name, a
    Confidence 0..100 and a BoundingBox of plain numbers with something inside the frame, as
    DetectCustomLabels writes them; None for anything else (detections_from_custom_labels then
    reads the line and says what is wrong). The arithmetic is ratio_box_to_pixels' own, step by
    step, so a box lands on the same pixels either way."""
    if type(items) is not list:
        return None
    width, height = image.width, image.height
    rows, scored, skipped = [], [], []
    for item in items:
        if type(item) is not dict:
            return None
        name, confidence, geometry = item.get("Name"), item.get("Confidence"), item.get("Geometry")
        if type(name) is not str or type(confidence) not in _NUMBERS or not 0 <= confidence <= 100 \
                or type(geometry) is not dict:
            return None
        ratios = geometry.get("BoundingBox")
        if type(ratios) is not dict:
            return None
        ratio_left, ratio_top = ratios.get("Left"), ratios.get("Top")
        ratio_width, ratio_height = ratios.get("Width"), ratios.get("Height")
        if type(ratio_left) not in _NUMBERS or type(ratio_top) not in _NUMBERS \
                or type(ratio_width) not in _NUMBERS or type(ratio_height) not in _NUMBERS \
                or not (-_RATIO_LIMIT < ratio_left < _RATIO_LIMIT and -_RATIO_LIMIT < ratio_top < _RATIO_LIMIT
                        and 0 < ratio_width < _RATIO_LIMIT and 0 < ratio_height < _RATIO_LIMIT):
            return None
        # geometry.clip_to_frame of the Rect ratio_box_to_pixels makes, then its rounding.
        left, top = ratio_left * width, ratio_top * height
        right, bottom = left + ratio_width * width, top + ratio_height * height
        left, top = min(max(left, 0.0), width), min(max(top, 0.0), height)
        right, bottom = min(max(right, 0.0), width), min(max(bottom, 0.0), height)
        box_width, box_height = max(right - left, 0.0), max(bottom - top, 0.0)
        if not (box_width > 0 and box_height > 0):
            return None
        box_width, box_height = round(box_width, 3), round(box_height, 3)
        if box_width <= 0 or box_height <= 0:
            return None
        label = labels.get(name)
        if label is None:
            skipped.append(name)
            continue
        confidence = float(confidence)
        rows.append((image.pk, model_version.pk, label.pk, round(left, 3), round(top, 3), box_width,
                     box_height, confidence))
        scored.append((confidence, thresholds[label.pk]))
    return rows, scored, skipped


def _rows(image, model_version, detections, labels, thresholds):
    """(proposals, [(confidence, threshold)], skipped label names) for one image; raises LineError."""
    rows, scored, skipped = [], [], []
    for detection in detections:
        try:
            check_detection(detection)
        except InvalidDetection as error:
            raise LineError(str(error)) from None
        label = labels.get(detection.label)
        if label is None:
            skipped.append(detection.label)
            continue
        left, top, width, height = detection.box if detection.box is not None else (None,) * 4
        rows.append((image.pk, model_version.pk, label.pk, left, top, width, height, detection.confidence))
        scored.append((detection.confidence, thresholds[label.pk]))
    return rows, scored, skipped


def _write(entries, model_version):
    """Replace each image's proposals from this model version and its outcome, like a run does."""
    entries = list(entries)
    if not entries:
        return
    ids = [image.pk for image, *_ in entries]
    Proposal.objects.filter(image_id__in=ids, model_version=model_version).delete()
    ProposalOutcome.objects.filter(image_id__in=ids, model_version=model_version).delete()
    insert_rows(Proposal, ("image_id", "model_version_id", "label_id", "left", "top", "width", "height",
                           "confidence"), [row for _image, rows, _s, _k in entries for row in rows])
    outcomes, priorities = [], []
    for image, proposals, scored, skipped in entries:
        priorities.append((uncertainty_score(scored), image.pk))
        unknown = ", ".join(sorted(set(skipped)))
        note = (f"skipped {len(skipped)} detection(s) of labels not in the project: {unknown}"
                if skipped else "")
        outcomes.append((image.pk, model_version.pk, True, len(proposals),
                         UNKNOWN_LABELS if skipped else "", note))
    update_rows(Image, "priority", priorities)
    insert_rows(ProposalOutcome, ("image_id", "model_version_id", "ok", "proposals", "error_code", "error"),
                outcomes)


def _import_line(raw, number, *, iteration, model_version, labels, attribute, report, first_seen):
    data = _read_line(raw)
    if data is None:
        return
    source = data["source-ref"]
    image = iteration.images.filter(source=source).order_by().first()
    if image is None:
        raise LineError(f"no image {source} in {iteration}")
    detections = detections_from_line(data, width=image.width, height=image.height, attribute=attribute)
    try:
        stored = store_detections(
            image=image, model_version=model_version, detections=detections, labels=labels
        )
    except InvalidDetection as error:
        raise LineError(str(error)) from None
    if source in first_seen:
        report.notes.append((number, f"replaces the proposals of line {first_seen[source]} for {source}"))
    else:
        report.images += 1
    first_seen[source] = number
    report.proposals += stored.proposals
    if stored.skipped_labels:
        report.notes.append(
            (number, f"skipped labels not in the project: {', '.join(stored.skipped_labels)}")
        )


def detections_from_line(data, *, width, height, attribute=None):
    if "CustomLabels" in data and attribute is None:
        try:
            return detections_from_custom_labels(
                data["CustomLabels"], width=width, height=height, drop_outside=False
            )
        except ValueError as error:
            raise LineError(str(error)) from None
    name = attribute or _label_attribute(data)
    metadata = data.get(f"{name}-metadata")
    if name not in data or not isinstance(metadata, dict):
        raise LineError(f"no label attribute {name!r} with {name}-metadata")
    kind = metadata.get("type")
    if kind == DETECTION_TYPE:
        return _from_object_detection(data, name, width, height)
    if kind == CLASSIFICATION_TYPE:
        return [Detection(_class_name(metadata), _manifest_confidence(metadata.get("confidence")), None)]
    raise LineError(f"attribute {name!r} is of type {kind!r}, not an object-detection or classification")


def _label_attribute(data):
    found = [
        key for key, value in data.items()
        if isinstance(value, dict) and key.endswith("-metadata")
        and value.get("type") in (DETECTION_TYPE, CLASSIFICATION_TYPE)
        and key[: -len("-metadata")] in data
    ]
    if not found:
        raise LineError("no CustomLabels and no Ground Truth object-detection attribute")
    if len(found) > 1:
        names = ", ".join(sorted(key[: -len("-metadata")] for key in found))
        raise LineError(f"several label attributes ({names}): choose one with --attribute")
    return found[0][: -len("-metadata")]


def _from_object_detection(data, name, width, height):
    attribute = parse_detection_attribute(data, name)
    line_width, line_height, _depth = attribute.size
    if (line_width, line_height) != (width, height):
        # Manifest boxes are pixels of the image the line describes: on an image of another size
        # they would land in the wrong place.
        raise LineError(
            f"image_size {line_width}x{line_height} differs from the image's {width}x{height} "
            "in Loupe; the boxes would land in the wrong place"
        )
    return [
        Detection(label, _manifest_confidence(confidence),
                  _pixel_box(geometry, width, height, f"{name}.annotations[{index}]"))
        for index, (label, *geometry, confidence) in enumerate(attribute.boxes)
    ]


def _pixel_box(geometry, width, height, where):
    if geometry[2] <= 0 or geometry[3] <= 0:
        raise LineError(f"{where}: invalid box (width and height must be > 0)")
    # Clamped like Rekognition's boxes; a box with nothing inside the frame is an error.
    part = clip_to_frame(Rect(*map(float, geometry)), width, height)
    if part is None:
        raise LineError(f"{where}: invalid box (it lies outside the {width}x{height} image)")
    return tuple(part)


def _class_name(metadata):
    name = metadata.get("class-name")
    if not isinstance(name, str) or not name:
        raise LineError("image-classification metadata has no class-name")
    return name


def _manifest_confidence(value):
    if not all_finite(value) or not 0 <= value <= 1:
        raise LineError(f"confidence {value!r} must be a number 0..1 in a manifest")
    return round(float(value) * 100, 6)
