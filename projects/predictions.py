"""Importing predictions made elsewhere as proposals, one JSON line per image.

Two line shapes are accepted:
- DetectCustomLabels output: {"source-ref": "s3://...", "CustomLabels": [...]}, ratios converted to
  pixels with the image's own width and height;
- a Ground Truth manifest line: its object-detection (or image-classification) attribute becomes
  proposals, confidences 0..1 scaled to 0..100.
Each line is imported whole or not at all; every line not imported is reported with its number.
"""

import json
import numbers
from dataclasses import dataclass, field

from projects.models import ModelVersion
from projects.proposals import Detection, InvalidDetection, store_detections
from projects.rekognition import ratio_box_to_pixels

OBJECT_DETECTION = "groundtruth/object-detection"
IMAGE_CLASSIFICATION = "groundtruth/image-classification"


class LineError(ValueError):
    """This line cannot be imported; the message says why."""


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
        project=project, name=name, defaults={"kind": ModelVersion.Kind.IMPORTED, "status": "READY"}
    )
    return model_version


def import_predictions(*, iteration, model_version, lines, attribute=None):
    """Import an iterable of JSON lines (str or bytes); returns a PredictionImportReport."""
    labels = {label.name: label for label in iteration.project.labels.all()}
    report = PredictionImportReport()
    first_seen = {}
    for number, raw in enumerate(lines, start=1):
        report.lines = number
        try:
            _import_line(
                raw, number, iteration=iteration, model_version=model_version, labels=labels,
                attribute=attribute, report=report, first_seen=first_seen,
            )
        except LineError as error:
            report.problems.append((number, str(error)))
    if report.images:
        iteration.model_version = model_version
        iteration.save(update_fields=["model_version"])
    return report


def _import_line(raw, number, *, iteration, model_version, labels, attribute, report, first_seen):
    data = parse_json_line(raw)
    if data is None:
        return
    source = data.get("source-ref")
    if not isinstance(source, str) or not source:
        raise LineError("no source-ref")
    image = iteration.images.filter(source=source).first()
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


def parse_json_line(raw):
    """A dict, None for a blank line, or LineError."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise LineError("not UTF-8 text") from None
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise LineError(f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise LineError("not a JSON object")
    return data


def detections_from_line(data, *, width, height, attribute=None):
    if "CustomLabels" in data and attribute is None:
        return _from_custom_labels(data["CustomLabels"], width, height)
    name = attribute or _label_attribute(data)
    metadata = data.get(f"{name}-metadata")
    if name not in data or not isinstance(metadata, dict):
        raise LineError(f"no label attribute {name!r} with {name}-metadata")
    kind = metadata.get("type")
    if kind == OBJECT_DETECTION:
        return _from_object_detection(name, data[name], metadata, width, height)
    if kind == IMAGE_CLASSIFICATION:
        return [Detection(_class_name(metadata), _manifest_confidence(metadata.get("confidence")), None)]
    raise LineError(f"attribute {name!r} is of type {kind!r}, not an object-detection or classification")


def _label_attribute(data):
    found = [
        key for key, value in data.items()
        if isinstance(value, dict) and key.endswith("-metadata")
        and value.get("type") in (OBJECT_DETECTION, IMAGE_CLASSIFICATION)
        and key[: -len("-metadata")] in data
    ]
    if not found:
        raise LineError("no CustomLabels and no Ground Truth object-detection attribute")
    if len(found) > 1:
        names = ", ".join(sorted(key[: -len("-metadata")] for key in found))
        raise LineError(f"several label attributes ({names}): choose one with --attribute")
    return found[0][: -len("-metadata")]


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _from_custom_labels(items, width, height):
    if not isinstance(items, list):
        raise LineError("CustomLabels is not a list")
    detections = []
    for index, item in enumerate(items):
        where = f"CustomLabels[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise LineError(f"{where} has no Name")
        confidence = item.get("Confidence")
        if not _number(confidence) or not 0 <= confidence <= 100:
            raise LineError(f"{where}: Confidence must be a number 0..100")
        ratios = (item.get("Geometry") or {}).get("BoundingBox")
        if ratios is None:
            detections.append(Detection(item["Name"], float(confidence), None))
            continue
        box = _ratio_box(ratios, width, height, where)
        detections.append(Detection(item["Name"], float(confidence), box))
    return detections


def _ratio_box(ratios, width, height, where):
    keys = ("Left", "Top", "Width", "Height")
    if not isinstance(ratios, dict) or not all(_number(ratios.get(key)) for key in keys):
        raise LineError(f"{where}: invalid box (BoundingBox needs numbers {', '.join(keys)})")
    if ratios["Width"] <= 0 or ratios["Height"] <= 0:
        raise LineError(f"{where}: invalid box (Width and Height must be > 0)")
    box = ratio_box_to_pixels(ratios, width, height)
    if box is None:
        raise LineError(f"{where}: invalid box (it lies outside the {width}x{height} image)")
    return box


def _from_object_detection(name, value, metadata, width, height):
    annotations = value.get("annotations") if isinstance(value, dict) else None
    objects = metadata.get("objects")
    class_map = metadata.get("class-map")
    if not isinstance(annotations, list) or not isinstance(objects, list):
        raise LineError(f"{name} needs annotations and {name}-metadata needs objects")
    if len(objects) != len(annotations):
        raise LineError(f"{name}: {len(annotations)} annotations but {len(objects)} objects")
    if not isinstance(class_map, dict):
        raise LineError(f"{name}-metadata has no class-map")
    detections = []
    for index, (annotation, found) in enumerate(zip(annotations, objects, strict=True)):
        where = f"{name}.annotations[{index}]"
        label = _annotation_label(annotation, class_map, where)
        confidence = _manifest_confidence(found.get("confidence") if isinstance(found, dict) else None)
        detections.append(Detection(label, confidence, _pixel_box(annotation, width, height, where)))
    return detections


def _annotation_label(annotation, class_map, where):
    if not isinstance(annotation, dict):
        raise LineError(f"{where} is not an object")
    class_id = annotation.get("class_id")
    label = class_map.get(str(class_id)) if _number(class_id) else None
    if not isinstance(label, str):
        raise LineError(f"{where}: class_id {class_id!r} is not in the class-map")
    return label


def _pixel_box(annotation, width, height, where):
    keys = ("left", "top", "width", "height")
    if not all(_number(annotation.get(key)) for key in keys):
        raise LineError(f"{where}: invalid box (needs numbers {', '.join(keys)})")
    left, top, box_width, box_height = (float(annotation[key]) for key in keys)
    if box_width <= 0 or box_height <= 0:
        raise LineError(f"{where}: invalid box (width and height must be > 0)")
    # Clamped like Rekognition's boxes; a box with nothing inside the frame is an error.
    right, bottom = min(left + box_width, width), min(top + box_height, height)
    left, top = max(left, 0.0), max(top, 0.0)
    if right <= left or bottom <= top:
        raise LineError(f"{where}: invalid box (it lies outside the {width}x{height} image)")
    return (left, top, right - left, bottom - top)


def _class_name(metadata):
    name = metadata.get("class-name")
    if not isinstance(name, str) or not name:
        raise LineError("image-classification metadata has no class-name")
    return name


def _manifest_confidence(value):
    if not _number(value) or not 0 <= value <= 1:
        raise LineError(f"confidence {value!r} must be a number 0..1 in a manifest")
    return round(float(value) * 100, 6)
