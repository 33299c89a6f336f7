"""Rekognition Custom Labels' rules for a training manifest, checked before anyone uploads it.

Errors make Rekognition refuse the whole dataset (or are defects Loupe refuses to ship); warnings
name images or boxes Rekognition will drop or ignore. Each issue keeps a count and examples of the
affected images. Rules: shared/spec/formats.md section 1, "Limits and rules RCL enforces".
"""

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from projects.rules import (
    IMAGE_EXTENSIONS,
    IMAGE_FORMATS,
    MAX_ASPECT,
    MAX_BOXES,
    MAX_IMAGE_BYTES,
    MAX_INVALID_FRACTION,
    MAX_LABEL_NAME,
    MAX_LABELS,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_MANIFEST_BYTES,
    MAX_SIDE,
    MIN_LABELS,
    MIN_SIDE,
    SCALED_SIDE,
)

DETECTION_TYPE = "groundtruth/object-detection"
IGNORED_TYPES = {"groundtruth/image-classification", "groundtruth/label-verification"}
RCL_KEYS = ("errors", "warnings", "cl-errors", "cl-metadata")
BOX_KEYS = ("left", "top", "width", "height")
REQUIRED_METADATA = ("objects", "class-map", "type", "human-annotated", "creation-date")

MIN_TEST_COVERAGE = 0.5
EXAMPLES = 10
CREATION_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")

ERROR, WARNING = "error", "warning"
# code: (severity, what it means for Rekognition). Codes marked invalid count towards the 20% rule.
RULES = {
    "malformed": (ERROR, "lines that are not valid object-detection lines (Rekognition drops them)"),
    "line-too-long": (ERROR, f"lines longer than {MAX_LINE_CHARS:,} characters (Rekognition drops them)"),
    "duplicate-source": (ERROR, "images on more than one line (Rekognition keeps only one of them)"),
    "not-s3": (ERROR, "source-ref values that are not s3:// addresses"),
    "mixed-buckets": (ERROR, "images in more than one bucket: Rekognition needs all of them in one"),
    "too-few-labels": (ERROR, f"fewer than {MIN_LABELS} labels with boxes: Rekognition will not train"),
    "too-many-labels": (ERROR, f"more than {MAX_LABELS} labels: Rekognition will not train"),
    "too-many-lines": (ERROR, f"more than {MAX_LINES:,} lines: Rekognition refuses the manifest"),
    "too-large": (ERROR, "manifest larger than 1 GB: Rekognition refuses it"),
    "too-many-invalid": (
        ERROR, f"more than {MAX_INVALID_FRACTION:.0%} of the lines are invalid: Rekognition refuses "
        "the manifest",
    ),
    "too-many-boxes": (WARNING, f"images with more than {MAX_BOXES} boxes (Rekognition rejects the line)"),
    "image-dimensions": (
        WARNING, f"images outside {MIN_SIDE}..{MAX_SIDE} px per side or with an aspect ratio above "
        f"{MAX_ASPECT}:1 (Rekognition rejects the line)",
    ),
    "image-format": (WARNING, "images that are not JPEG or PNG (Rekognition rejects the line)"),
    "image-too-large": (WARNING, "images larger than 15 MB (Rekognition rejects the line)"),
    "label-name-too-long": (
        WARNING, f"label names longer than {MAX_LABEL_NAME} characters (Rekognition rejects the line)"
    ),
    "not-detection": (
        WARNING, "lines without an object-detection attribute (dropped from a detection dataset)"
    ),
    "tiny-box": (
        WARNING, f"boxes 1 px or smaller once Rekognition scales the image to {SCALED_SIDE} px on its "
        "long side (each is dropped)",
    ),
    "box-outside": (WARNING, "boxes not inside the image frame (each is dropped)"),
    "empty": (WARNING, "images verified as empty: kept as a record, ignored for training"),
    "ignored-attributes": (
        WARNING, "classification or label-verification attributes (ignored by detection training)"
    ),
    "several-attributes": (WARNING, "lines with more than one object-detection attribute"),
}
INVALIDATING = {
    "malformed", "line-too-long", "not-s3", "too-many-boxes", "image-dimensions", "image-format",
    "image-too-large", "label-name-too-long", "not-detection",
}


@dataclass
class Issue:
    code: str
    severity: str
    message: str
    images: int = 0  # affected lines
    items: int = 0  # affected boxes for box rules, else lines
    examples: list = field(default_factory=list)


@dataclass
class ValidationReport:
    lines: int = 0
    bytes: int = 0
    boxes: int = 0
    empty: int = 0
    invalid_lines: int = 0
    labels: dict = field(default_factory=dict)  # label name -> boxes
    buckets: dict = field(default_factory=dict)  # bucket -> lines
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.errors

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        for key in ("errors", "warnings"):
            data[key] = [Issue(**issue) for issue in data.get(key, [])]
        return cls(**data)

    def as_text(self):
        lines = [
            f"{self.lines} lines, {self.bytes:,} bytes, {self.boxes} boxes, "
            f"{len(self.labels)} labels, {self.empty} empty images, {self.invalid_lines} invalid lines",
        ]
        for name, count in sorted(self.labels.items()):
            lines.append(f"  label {name}: {count} boxes")
        for issue in self.errors + self.warnings:
            lines.append(f"{issue.severity.upper()} [{issue.code}] {issue.message}: {_counts(issue)}")
            lines.extend(f"  {example}" for example in issue.examples)
        lines.append("OK: Rekognition will accept this manifest." if self.ok else
                     f"REFUSED: {len(self.errors)} error(s) must be fixed before Rekognition can train.")
        return "\n".join(lines)


def _counts(issue):
    if issue.items != issue.images:
        return f"{issue.items} in {issue.images} image(s)"
    return f"{issue.images} line(s)" if issue.images else "whole manifest"


class ManifestValidator:
    """Feed it lines (text) or records (parsed objects), then ask for the report.

    Memory stays flat except for the duplicate check, which remembers a hash per source-ref;
    exports from the database skip it because an iteration cannot hold an image twice.
    """

    def __init__(self, *, check_duplicates=True):
        self._report = ValidationReport()
        self._issues = {}
        self._seen = set() if check_duplicates else None
        self._invalid = False

    # Feeding

    def add_line(self, text, *, line_number=None):
        """Check one line of text; returns the parsed line, or None if blank or not JSON."""
        text = text.rstrip("\r\n")
        if not text.strip():
            return None
        where = f"line {line_number or self._report.lines + 1}"
        try:
            obj = json.loads(text)
        except ValueError as error:
            self._start(len(text))
            self._flag("malformed", f"{where}: not JSON ({error})")
            self._finish()
            return None
        self.add_record(obj, len(text), line_number=line_number,
                        byte_count=len(text.encode("utf-8")))
        return obj

    def add_record(self, obj, length, *, file_size=0, image_format="", line_number=None, byte_count=None):
        """obj: one parsed line of any origin; length: its JSON text's length in characters."""
        self._start(length, byte_count)
        number = line_number or self._report.lines
        source = obj.get("source-ref") if isinstance(obj, dict) else None
        where = f"line {number} ({source})" if isinstance(source, str) else f"line {number}"
        if length > MAX_LINE_CHARS:
            self._flag("line-too-long", f"{where}: {length:,} characters")
        if not isinstance(obj, dict) or not isinstance(source, str):
            self._flag("malformed", f"{where}: no source-ref")
            self._finish()
            return
        self._check_source(source, where, image_format, file_size)
        attributes = detection_attributes(obj)
        if any(_metadata_type(obj, key) in IGNORED_TYPES for key in _attribute_keys(obj)):
            self._flag("ignored-attributes", where)
        if not attributes:
            self._flag("not-detection", where)
        elif len(attributes) > 1:
            self._flag("several-attributes", f"{where}: {', '.join(attributes)}")
        for attribute in attributes:
            self._check_attribute(obj, attribute, where)
        self._finish()

    def add_image(self, *, source, width, height, boxes, class_names, length, file_size=0, image_format=""):
        """A line Loupe's exporter built, described without parsing it back.

        boxes: (class_id, left, top, width, height) integer pixels; class_names: {class_id: name}.
        The exporter's lines have the right shape by construction, so only Rekognition's rules apply.
        """
        self._start(length)
        where = f"line {self._report.lines} ({source})"
        if length > MAX_LINE_CHARS:
            self._flag("line-too-long", f"{where}: {length:,} characters")
        self._check_source(source, where, image_format, file_size)
        self._check_image(where, width, height, boxes, class_names)
        self._finish()

    # Per line

    def _start(self, length, byte_count=None):
        self._report.lines += 1
        # +1: the newline that ends the line in the file.
        self._report.bytes += (length if byte_count is None else byte_count) + 1
        self._invalid = False

    def _finish(self):
        if self._invalid:
            self._report.invalid_lines += 1

    def _flag(self, code, example, items=1):
        issue = self._issues.get(code)
        if issue is None:
            severity, message = RULES[code]
            issue = self._issues[code] = Issue(code, severity, message)
        issue.images += 1
        issue.items += items
        if len(issue.examples) < EXAMPLES:
            issue.examples.append(example)
        if code in INVALIDATING:
            self._invalid = True

    def _check_source(self, source, where, image_format, file_size):
        if self._seen is not None:
            key = hash(source)
            if key in self._seen:
                self._flag("duplicate-source", where)
            self._seen.add(key)
        if not source.startswith("s3://") or len(source) < 6:
            self._flag("not-s3", where)
        else:
            bucket = source[5:].partition("/")[0]
            self._report.buckets[bucket] = self._report.buckets.get(bucket, 0) + 1
        fmt = image_format.upper() if image_format else ""
        if fmt and fmt not in IMAGE_FORMATS:
            self._flag("image-format", f"{where}: {fmt}")
        elif not fmt and PurePosixPath(source).suffix.lower() not in IMAGE_EXTENSIONS:
            self._flag("image-format", f"{where}: not a .jpg, .jpeg or .png file")
        if file_size > MAX_IMAGE_BYTES:
            self._flag("image-too-large", f"{where}: {file_size / 1024 / 1024:.1f} MB")

    def _check_attribute(self, obj, attribute, where):
        problem = attribute_problem(obj, attribute)
        if not problem and not all(_is_int(box[key]) for box in obj[attribute]["annotations"]
                                   for key in BOX_KEYS):
            problem = "box pixels must be integers"
        if problem:
            self._flag("malformed", f"{where}: {attribute}: {problem}")
            return
        size = obj[attribute]["image_size"][0]
        class_map = obj[attribute + "-metadata"]["class-map"]
        boxes = [(box["class_id"], box["left"], box["top"], box["width"], box["height"])
                 for box in obj[attribute]["annotations"]]
        names = {box[0]: class_map[str(box[0])] for box in boxes}
        self._check_image(where, size["width"], size["height"], boxes, names)

    def _check_image(self, where, width, height, boxes, class_names):
        short, long = (width, height) if width < height else (height, width)
        if short < MIN_SIDE or long > MAX_SIDE or long > MAX_ASPECT * short:
            self._flag("image-dimensions", f"{where}: {width}x{height}")
        if not boxes:
            self._report.empty += 1
            self._flag("empty", where)
            return
        if len(boxes) > MAX_BOXES:
            self._flag("too-many-boxes", f"{where}: {len(boxes)} boxes")
        # A side of at most `smallest` px shrinks to 1 px or less when the long side becomes 1280.
        smallest = long / SCALED_SIDE if long > SCALED_SIDE else 1
        labels = self._report.labels
        outside = tiny = 0
        long_names = []
        for class_id, left, top, box_width, box_height in boxes:
            name = class_names[class_id]
            labels[name] = labels.get(name, 0) + 1
            if len(name) > MAX_LABEL_NAME:
                long_names.append(name)
            if left < 0 or top < 0 or box_width <= 0 or box_height <= 0 or \
                    left + box_width > width or top + box_height > height:
                outside += 1
            elif box_width <= smallest or box_height <= smallest:
                tiny += 1
        self._report.boxes += len(boxes)
        if outside:
            self._flag("box-outside", where, outside)
        if tiny:
            self._flag("tiny-box", where, tiny)
        if long_names:
            self._flag("label-name-too-long", f"{where}: {long_names[0][:40]}...")

    # Whole manifest

    def report(self):
        report = self._report
        whole = []
        if len(report.buckets) > 1:
            counts = ", ".join(f"{name} ({count})" for name, count in sorted(report.buckets.items()))
            whole.append(("mixed-buckets", counts))
        if len(report.labels) < MIN_LABELS:
            found = ", ".join(sorted(report.labels)) or "none"
            whole.append(("too-few-labels", f"labels with boxes: {found}"))
        if len(report.labels) > MAX_LABELS:
            whole.append(("too-many-labels", f"{len(report.labels)} labels"))
        if report.lines > MAX_LINES:
            whole.append(("too-many-lines", f"{report.lines:,} lines"))
        if report.bytes > MAX_MANIFEST_BYTES:
            whole.append(("too-large", f"{report.bytes:,} bytes"))
        if report.lines and report.invalid_lines > MAX_INVALID_FRACTION * report.lines:
            whole.append(("too-many-invalid", f"{report.invalid_lines} of {report.lines} lines"))
        issues = dict(self._issues)
        for code, example in whole:
            severity, message = RULES[code]
            issues[code] = Issue(code, severity, message, examples=[example])
        ordered = [issues[code] for code in RULES if code in issues]
        report.errors = [issue for issue in ordered if issue.severity == ERROR]
        report.warnings = [issue for issue in ordered if issue.severity == WARNING]
        return report


def _attribute_keys(obj):
    return [key for key in obj if key + "-metadata" in obj and not key.endswith("-metadata")]


def _metadata_type(obj, key):
    metadata = obj.get(key + "-metadata")
    return metadata.get("type") if isinstance(metadata, dict) else None


def detection_attributes(obj):
    """Names of the object-detection attributes of a parsed line, in file order."""
    return [key for key in _attribute_keys(obj) if _metadata_type(obj, key) == DETECTION_TYPE]


@dataclass
class Attribute:
    name: str
    human: bool
    created: datetime
    size: tuple  # (width, height, depth)
    boxes: list  # (label name, left, top, width, height, confidence 0..1)


def parse_detection_attribute(obj, name):
    """The boxes of a well-formed object-detection attribute; ValueError saying what is wrong."""
    problem = attribute_problem(obj, name)
    if problem:
        raise ValueError(f"{name}: {problem}")
    body, metadata = obj[name], obj[name + "-metadata"]
    size = body["image_size"][0]
    class_map = metadata["class-map"]
    boxes = [
        (class_map[str(box["class_id"])], box["left"], box["top"], box["width"], box["height"],
         entry["confidence"])
        for box, entry in zip(body["annotations"], metadata["objects"], strict=True)
    ]
    created = datetime.fromisoformat(metadata["creation-date"]).replace(tzinfo=UTC)
    return Attribute(name, metadata["human-annotated"] == "yes", created,
                     (size["width"], size["height"], size["depth"]), boxes)


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
        if not _is_int(size[0].get(key)) or size[0][key] <= 0:
            return f"image_size lacks a positive integer {key}"
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
    date = metadata["creation-date"]
    if not isinstance(date, str) or not CREATION_DATE.match(date):
        return f"creation-date {date!r} is not UTC YYYY-MM-DDTHH:MM:SS[.ffffff]"
    return None


def _box_problem(box, class_map):
    if not isinstance(box, dict):
        return "not an object"
    for key in BOX_KEYS:
        if not _is_number(box.get(key)):
            return f"{key} must be a number of pixels"
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
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_lines(lines):
    """The report for an iterable of manifest lines (text), e.g. an open file."""
    validator = ManifestValidator()
    for number, text in enumerate(lines, start=1):
        validator.add_line(text, line_number=number)
    return validator.report()


def check_split(train_lines, test_lines):
    """Problems with a train/test pair of manifests: list of one-line messages."""
    train_sources, train_labels = _sources_and_labels(train_lines)
    test_sources, test_labels = _sources_and_labels(test_lines)
    return split_problems(train_sources, train_labels, test_sources, test_labels)


def split_problems(train_sources, train_labels, test_sources, test_labels):
    """check_split's rules on the source-refs and label names of each side."""
    problems = []
    shared = train_sources & test_sources
    if shared:
        problems.append(f"{len(shared)} image(s) in both train and test, e.g. {min(shared)}")
    if train_labels:
        covered = len(train_labels & test_labels) / len(train_labels)
        if covered < MIN_TEST_COVERAGE:
            problems.append(
                f"the test set covers {covered:.0%} of the training labels; Rekognition needs "
                f"at least {MIN_TEST_COVERAGE:.0%}"
            )
    return problems


def _sources_and_labels(lines):
    sources, labels = set(), set()
    for text in lines:
        if not text.strip():
            continue
        obj = json.loads(text)
        sources.add(obj.get("source-ref"))
        labels.update(line_labels(obj))
    return sources, labels


def line_labels(obj):
    """Label names with at least one box on a parsed line."""
    names = set()
    for attribute in detection_attributes(obj):
        if attribute_problem(obj, attribute):
            continue
        class_map = obj[attribute + "-metadata"]["class-map"]
        names.update(class_map[str(box["class_id"])] for box in obj[attribute]["annotations"])
    return names
