"""What one Ground Truth manifest line is: the grammar every reader and writer of manifests shares.

The validator (checks), the exporter, the train/test split, the manifest import and the import of
predictions all read lines through this module, so a line is parsed one way everywhere: the
object-detection attribute and its metadata, the creation date in every ISO 8601 form AWS writes,
the keys Rekognition adds when it hands lines back, and Ground Truth's failed data objects.
The rules behind each choice, with the AWS page each comes from: docs/rekognition-rules.md.
"""

import functools
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from projects.geometry import pixel

DETECTION_TYPE = "groundtruth/object-detection"
CLASSIFICATION_TYPE = "groundtruth/image-classification"
VERIFICATION_TYPE = "groundtruth/label-verification"
IGNORED_TYPES = {CLASSIFICATION_TYPE, VERIFICATION_TYPE}
# Keys Rekognition adds to the lines it hands back (validation manifests, ListDatasetEntries);
# stripped at every level of a line: the line, the attribute, each annotation, the metadata.
RCL_KEYS = ("errors", "warnings", "cl-errors", "cl-metadata")
_RCL_KEY_SET = frozenset(RCL_KEYS)
_RCL_KEY_TEXTS = tuple(f'"{key}"' for key in RCL_KEYS)
BOX_KEYS = ("left", "top", "width", "height")
REQUIRED_METADATA = ("objects", "class-map", "type", "human-annotated", "creation-date")
# Rekognition takes images of at most 4096 px a side; a size or coordinate beyond this is no image's
# and would overflow the database's integer columns (or float range) further on.
MAX_PIXELS = 1_000_000

# Every form AWS writes: GT's 2018-10-18T22:18:13.527256, RCL's 2021-06-22T10:11:18.006Z, the COCO
# converter's whole seconds, offsets as +hh:mm or +hhmm, and a space instead of the T.
_CREATION_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


class LineError(ValueError):
    """This manifest or prediction line cannot be read or imported; the message says why."""


def parse_creation_date(text):
    """A creation-date as an aware UTC datetime; LineError when it is no ISO 8601 date-time."""
    match = _CREATION_DATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise LineError(f"creation-date {text!r} is not an ISO 8601 date and time")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # Fractions beyond microseconds (some tools write nanoseconds) are cut, never rounded up.
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    zone = UTC
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          micro, tzinfo=zone)
    except ValueError as error:
        raise LineError(f"creation-date {text!r} is not a valid date ({error})") from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        raise LineError(f"creation-date {text!r} is outside the years 1..9999 in UTC") from None


def format_creation_date(moment):
    """UTC without an offset, as Ground Truth writes it: 2026-11-28T10:15:03.123456."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def _refuse_constant(name):
    raise LineError(f"not JSON ({name} is not a number)")


# One decoder for every line (json.loads with an option builds one per call).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_line(raw):
    """A parsed line (dict), None for a blank line, or LineError (bytes must be UTF-8).

    Hostile text is a LineError too: a UTF-8 byte-order mark is dropped, NaN and Infinity (which
    JSON does not have) are refused, and nesting deeper than the parser's recursion limit is
    "nested too deeply" instead of a RecursionError.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise LineError("not UTF-8 text") from None
    raw = raw.removeprefix("\ufeff")
    if not raw.strip():
        return None
    try:
        data = _DECODER.decode(raw)
    except ValueError as error:
        raise LineError(f"not JSON ({error})") from None
    except RecursionError:
        raise LineError("nested too deeply (JSON nested beyond what Loupe reads)") from None
    if not isinstance(data, dict):
        raise LineError("not a JSON object")
    return data


@dataclass(frozen=True)
class Flagged:
    """An annotation Rekognition marked with an ERROR_* code: reported, never imported as truth."""

    attribute: str
    index: int
    codes: tuple


def strip_rcl_keys(obj):
    """The line without the keys Rekognition adds, and the annotations it flagged.

    Keys are stripped at every level Rekognition writes them: the line, each label attribute and
    its metadata, each annotation and each objects[] entry. Returns (dict, [Flagged]); obj is not
    changed (dicts that had such keys are copied, the rest is shared).
    """
    flagged = []
    clean = _without(obj)
    for key, body in obj.items():
        if not isinstance(body, dict) or key in RCL_KEYS:
            continue
        new = _without(body)
        for field in ("annotations", "objects"):
            items = new.get(field)
            if not isinstance(items, list):
                continue
            if field == "annotations":
                for index, annotation in enumerate(items):
                    codes = _error_codes(annotation)
                    if codes:
                        flagged.append(Flagged(key, index, codes))
            stripped = [_without(item) if isinstance(item, dict) else item for item in items]
            if any(a is not b for a, b in zip(stripped, items, strict=True)):
                new = dict(new) if new is body else new
                new[field] = stripped
        if new is not body:
            clean = dict(clean) if clean is obj else clean
            clean[key] = new
    return clean, flagged


def may_carry_rcl_keys(text):
    """False when a line's JSON text certainly has none of Rekognition's keys (a cheap test).

    A key may be spelled with escapes ("\\u0065rrors" is "errors"): text with any is suspect."""
    return "\\u" in text or any(key in text for key in _RCL_KEY_TEXTS)


def _without(mapping):
    """mapping without Rekognition's keys: itself when it has none, else a copy."""
    if _RCL_KEY_SET.isdisjoint(mapping):
        return mapping
    return {key: value for key, value in mapping.items() if key not in RCL_KEYS}


def _error_codes(annotation):
    if not isinstance(annotation, dict):
        return ()
    codes = []
    for key in ("errors", "cl-errors"):
        found = annotation.get(key)
        for entry in found if isinstance(found, list) else [found] if found else []:
            code = entry.get("code") if isinstance(entry, dict) else entry
            if isinstance(code, str) and code.startswith("ERROR_"):
                codes.append(code)
    return tuple(codes)


def attribute_keys(obj):
    """Names of the label attributes of a line: each '<name>' with a '<name>-metadata' beside it."""
    return [key for key in obj if key + "-metadata" in obj and not key.endswith("-metadata")]


def metadata_type(obj, key):
    """The attribute's metadata "type" when it is text (a hostile line may put a list there)."""
    metadata = obj.get(key + "-metadata")
    kind = metadata.get("type") if isinstance(metadata, dict) else None
    return kind if isinstance(kind, str) else None


def detection_attributes(obj):
    """Names of the object-detection attributes of a parsed line, in file order."""
    return [key for key in attribute_keys(obj) if metadata_type(obj, key) == DETECTION_TYPE]


def failures(obj):
    """[(attribute, failure-reason)] of a Ground Truth output line's failed data objects: a
    '<job>-metadata' with a failure-reason and no '<job>' body beside it."""
    found = []
    for key, value in obj.items():
        if not key.endswith("-metadata") or not isinstance(value, dict):
            continue
        name = key[: -len("-metadata")]
        if "failure-reason" in value and name not in obj:
            found.append((name, str(value["failure-reason"])))
    return found


@dataclass
class Attribute:
    name: str
    human: bool
    created: datetime
    size: tuple  # (width, height, depth)
    boxes: list  # (label name, left, top, width, height, confidence 0..1), whole pixels
    # Rekognition marked one of its annotations with an ERROR_ code (see strip_rcl_keys).
    flagged: bool = False


def parse_detection_attribute(obj, name):
    """The boxes of a well-formed object-detection attribute; LineError saying what is wrong.

    Float pixels (AWS's own COCO converter writes them) are read with geometry.pixel() on each
    edge, so a box lands on the whole pixels it would be exported on.
    """
    attribute = _well_formed_attribute(obj, name)
    if attribute is not None:
        return attribute
    problem = attribute_problem(obj, name)
    if problem:
        raise LineError(f"{name}: {problem}")
    body, metadata = obj[name], obj[name + "-metadata"]
    size = body["image_size"][0]
    class_map = metadata["class-map"]
    boxes = [
        (class_map[str(box["class_id"])], *whole_pixels(box), entry["confidence"])
        for box, entry in zip(body["annotations"], metadata["objects"], strict=True)
    ]
    return Attribute(name, metadata["human-annotated"] == "yes",
                     parse_creation_date(metadata["creation-date"]),
                     (size["width"], size["height"], size["depth"]), boxes)


def _well_formed_attribute(obj, name):
    """The Attribute read in one pass when every part of it is as Ground Truth writes it; None when
    anything is unusual or wrong (parse_detection_attribute then reads it through attribute_problem,
    which says what). Accepts exactly what attribute_problem accepts, and gives the same Attribute:
    most lines of a manifest are well formed, and checking them once is most of reading them."""
    body, metadata = obj.get(name), obj.get(name + "-metadata")
    if type(body) is not dict or type(metadata) is not dict or "type" not in metadata:
        return None
    try:
        sizes, annotations = body["image_size"], body["annotations"]
        objects, class_map = metadata["objects"], metadata["class-map"]
        human, created = metadata["human-annotated"], metadata["creation-date"]
        if (type(sizes) is not list or len(sizes) != 1 or type(sizes[0]) is not dict
                or type(annotations) is not list or type(objects) is not list
                or len(annotations) != len(objects) or type(class_map) is not dict
                or type(created) is not str or (human != "yes" and human != "no")):
            return None
        width, height, depth = sizes[0]["width"], sizes[0]["height"], sizes[0]["depth"]
        if (type(width) is not int or type(height) is not int or type(depth) is not int
                or not (0 < width <= MAX_PIXELS and 0 < height <= MAX_PIXELS and 0 < depth <= MAX_PIXELS)):
            return None
        boxes = []
        for box, entry in zip(annotations, objects, strict=True):
            if type(box) is not dict or type(entry) is not dict:
                return None
            left, top, box_width, box_height = box["left"], box["top"], box["width"], box["height"]
            class_id, confidence = box["class_id"], entry["confidence"]
            # Comparisons are False for NaN and for infinities beyond the bounds: no isfinite needed.
            if (type(left) not in _NUMBERS or type(top) not in _NUMBERS or type(box_width) not in _NUMBERS
                    or type(box_height) not in _NUMBERS or type(confidence) not in _NUMBERS
                    or type(class_id) is not int
                    or not (-MAX_PIXELS <= left <= MAX_PIXELS and -MAX_PIXELS <= top <= MAX_PIXELS
                            and -MAX_PIXELS <= box_width <= MAX_PIXELS
                            and -MAX_PIXELS <= box_height <= MAX_PIXELS and 0 <= confidence <= 1)):
                return None
            label = class_map.get(str(class_id))
            if type(label) is not str or not label:
                return None
            if type(left) is int and type(top) is int and type(box_width) is int and type(box_height) is int:
                # pixel() of a whole number is itself
                boxes.append((label, left, top, box_width, box_height, confidence))
            else:
                boxes.append((label, *whole_pixels(box), confidence))
        created = _creation_date(created)
    except (KeyError, LineError):
        return None
    return Attribute(name, human == "yes", created, (width, height, depth), boxes)


_NUMBERS = (int, float)


@functools.lru_cache(maxsize=1024)
def _creation_date(text):
    # The lines of a manifest share few creation dates; a datetime is immutable, so shared safely.
    return parse_creation_date(text)


def whole_pixels(box):
    """(left, top, width, height) of an annotation on whole pixels: edges rounded by pixel()."""
    left, top = pixel(box["left"]), pixel(box["top"])
    return (left, top, pixel(box["left"] + box["width"]) - left, pixel(box["top"] + box["height"]) - top)


def attribute_problem(obj, attribute):
    """Why an object-detection attribute is malformed, or None. Accepts float pixels."""
    body, metadata = obj.get(attribute), obj.get(attribute + "-metadata")
    if not isinstance(body, dict) or not isinstance(metadata, dict):
        return f"{attribute} and {attribute}-metadata must be objects"
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        return f"{attribute}-metadata lacks {', '.join(missing)}"
    size = body.get("image_size")
    if not (isinstance(size, list) and len(size) == 1 and isinstance(size[0], dict)):
        return "image_size must be a list of one {width, height, depth}"
    for key in ("width", "height", "depth"):
        if not _is_int(size[0].get(key)) or not 0 < size[0][key] <= MAX_PIXELS:
            return f"image_size lacks a positive integer {key} up to {MAX_PIXELS:,}"
    annotations, objects = body.get("annotations"), metadata["objects"]
    if not isinstance(annotations, list) or not isinstance(objects, list):
        return "annotations and objects must be lists"
    if len(objects) != len(annotations):
        return f"objects has {len(objects)} entries for {len(annotations)} annotations"
    class_map = metadata["class-map"]
    if not isinstance(class_map, dict):
        return "class-map must be an object"
    for index, box in enumerate(annotations):
        problem = _box_problem(box, class_map)
        if problem:
            return f"annotation {index}: {problem}"
    for index, entry in enumerate(objects):
        confidence = entry.get("confidence") if isinstance(entry, dict) else None
        if not _is_number(confidence) or not 0 <= confidence <= 1:
            return f"objects[{index}] needs a confidence between 0 and 1"
    if metadata["human-annotated"] not in ("yes", "no"):
        return 'human-annotated must be "yes" or "no"'
    try:
        parse_creation_date(metadata["creation-date"])
    except LineError as error:
        return str(error)
    return None


def _box_problem(box, class_map):
    if not isinstance(box, dict):
        return "not an object"
    for key in BOX_KEYS:
        if not _is_number(box.get(key)) or abs(box[key]) > MAX_PIXELS:
            return f"{key} must be a number of pixels within {MAX_PIXELS:,}"
    class_id = box.get("class_id")
    if not _is_int(class_id):
        return "class_id must be an integer"
    name = class_map.get(str(class_id))
    if not isinstance(name, str) or not name:
        return f"class_id {class_id} is not in class-map"
    return None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    # type(), not isinstance(): True and False are not pixels.
    if type(value) not in (int, float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        return False


def line_labels(obj):
    """Label names with at least one box on a parsed line (Rekognition's keys stripped first)."""
    obj, _flagged = strip_rcl_keys(obj)
    names = set()
    for attribute in detection_attributes(obj):
        if attribute_problem(obj, attribute):
            continue
        class_map = obj[attribute + "-metadata"]["class-map"]
        names.update(class_map[str(box["class_id"])] for box in obj[attribute]["annotations"])
    return names
