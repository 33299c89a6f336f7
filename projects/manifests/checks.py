"""Rekognition Custom Labels' rules for a training manifest, checked before anyone uploads it.

Errors make Rekognition refuse the whole dataset (or are defects Loupe refuses to ship); warnings
name images or boxes Rekognition will drop or ignore. Each issue keeps a count and examples of the
affected images. Each rule and the AWS page it comes from: docs/rekognition-rules.md.
"""

from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from projects.manifests.lines import (
    IGNORED_TYPES,
    LineError,
    attribute_keys,
    attribute_problem,
    detection_attributes,
    failures,
    line_labels,
    may_carry_rcl_keys,
    metadata_type,
    parse_line,
    strip_rcl_keys,
)
from projects.rules import (
    IMAGE_EXTENSIONS,
    IMAGE_FORMATS,
    MAX_ASPECT,
    MAX_BOXES,
    MAX_IMAGE_BYTES,
    MAX_INVALID_FRACTION,
    MAX_LABEL_NAME,
    MAX_LABELS,
    MAX_LINES,
    MAX_MANIFEST_BYTES,
    MAX_SIDE,
    MAX_TEST_IMAGES_PER_LABEL,
    MIN_LABELS,
    MIN_SIDE,
    MIN_TEST_COVERAGE,
    REGIONAL_MAX_IMAGES,
    SCALED_SIDE,
    size_text,
)

EXAMPLES = 10
# What a manifest is for: Rekognition's regional quotas and the per-label test limit differ.
TRAIN, TEST = "train", "test"

ERROR, WARNING = "error", "warning"
# code: (severity, what it means for Rekognition). Codes marked invalid count towards the 20% rule.
RULES = {
    "malformed": (ERROR, "lines that are not valid object-detection lines (Rekognition drops them)"),
    "duplicate-source": (ERROR, "images on more than one line (Rekognition keeps only one of them)"),
    "not-s3": (ERROR, "source-ref values that are not s3:// addresses"),
    "mixed-buckets": (ERROR, "images in more than one bucket: Rekognition needs all of them in one"),
    "too-few-labels": (ERROR, "no label with boxes: Rekognition will not train"),
    "too-many-labels": (ERROR, f"more than {MAX_LABELS} labels: Rekognition will not train"),
    "too-many-lines": (ERROR, f"more than {MAX_LINES:,} lines: Rekognition refuses the manifest"),
    "regional-quota": (ERROR, "more images than Rekognition's quota in the project's region"),
    "too-many-test-images": (
        ERROR, f"labels on more than {MAX_TEST_IMAGES_PER_LABEL:,} test images: Rekognition refuses "
        "the test dataset",
    ),
    "too-large": (ERROR, "manifest larger than 1 GB: Rekognition refuses it"),
    "too-many-invalid": (
        ERROR, f"more than {MAX_INVALID_FRACTION:.0%} of the lines are invalid: Rekognition refuses "
        "the manifest",
    ),
    "blank-line": (WARNING, "blank lines (Rekognition counts each as an invalid line)"),
    "failed-object": (
        WARNING, "Ground Truth data objects that failed (failure-reason, no labels from that job)"
    ),
    "too-many-boxes": (WARNING, f"images with more than {MAX_BOXES} boxes (Rekognition rejects the line)"),
    "image-dimensions": (
        WARNING, f"images outside {MIN_SIDE}..{MAX_SIDE} px per side or with an aspect ratio above "
        f"{MAX_ASPECT}:1 (Rekognition rejects the line)",
    ),
    "image-format": (WARNING, "images that are not JPEG or PNG (Rekognition rejects the line)"),
    "image-too-large": (
        WARNING, f"images larger than {size_text(MAX_IMAGE_BYTES)} (Rekognition rejects the line)"
    ),
    "label-name-too-long": (
        WARNING, f"label names longer than {MAX_LABEL_NAME} characters (Rekognition rejects the line)"
    ),
    "not-detection": (
        WARNING, "lines without an object-detection attribute (dropped from a detection dataset)"
    ),
    "no-valid-boxes": (
        WARNING, "images whose every box is outside the frame or too small (Rekognition rejects the "
        "line: ERROR_NO_VALID_ANNOTATIONS)",
    ),
    "tiny-box": (
        WARNING, f"boxes 1 px or smaller once Rekognition scales the image to {SCALED_SIDE} px on its "
        "long side (each is dropped)",
    ),
    "box-outside": (WARNING, "boxes not inside the image frame (each is dropped)"),
    "flagged-by-rekognition": (
        WARNING, "boxes Rekognition marked with an ERROR_ code when it handed the line back"
    ),
    "machine-labels": (
        WARNING, "images whose boxes are a model's proposals nobody reviewed (human-annotated: no): "
        "Rekognition ignores confidence and trains on these boxes like reviewed ones",
    ),
    "empty": (WARNING, "images verified as empty: kept as a record, ignored for training"),
    "one-label": (
        WARNING, "one label only: Rekognition's quotas page allows it for object detection, though one "
        "of its error pages asks for two",
    ),
    "ignored-attributes": (
        WARNING, "classification or label-verification attributes (ignored by detection training)"
    ),
    "several-attributes": (
        WARNING, "lines with more than one object-detection attribute (the last one is checked and counted)"
    ),
}
INVALIDATING = {
    "malformed", "blank-line", "not-s3", "too-many-boxes", "image-dimensions", "image-format",
    "image-too-large", "label-name-too-long", "not-detection", "no-valid-boxes",
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
    label_images: dict = field(default_factory=dict)  # label name -> lines with a box of it
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

    region: the project's AWS region, for Rekognition's regional quotas; purpose: TRAIN (also for
    a manifest not split yet) or TEST, whose quota is smaller and whose labels may each be on at
    most 1,000 images. Memory stays flat except for the duplicate check, which remembers a hash per
    source-ref; exports from the database skip it because an iteration cannot hold an image twice.
    """

    def __init__(self, *, check_duplicates=True, region=None, purpose=TRAIN):
        if purpose not in (TRAIN, TEST):
            raise ValueError(f"purpose must be {TRAIN!r} or {TEST!r}, not {purpose!r}")
        self._report = ValidationReport()
        self._issues = {}
        self._seen = set() if check_duplicates else None
        self._invalid = False
        self.region = region or ""
        self.purpose = purpose

    # Feeding

    def add_line(self, text, *, line_number=None):
        """Check one line of text; returns the parsed line, or None if blank or not JSON.

        A blank line is an object to Rekognition, and an invalid one.
        """
        text = text.rstrip("\r\n")
        where = f"line {line_number or self._report.lines + 1}"
        if not text.strip():
            self._start(len(text))
            self._flag("blank-line", where)
            self._finish()
            return None
        try:
            obj = parse_line(text)
        except LineError as error:
            self._start(len(text))
            self._flag("malformed", f"{where}: {error}")
            self._finish()
            return None
        self.add_record(obj, len(text), line_number=line_number,
                        byte_count=len(text.encode("utf-8")), strip=may_carry_rcl_keys(text))
        return obj

    def add_record(self, obj, length, *, file_size=0, image_format="", line_number=None, byte_count=None,
                   strip=True):
        """obj: one parsed line of any origin; length: its JSON text's length in characters.
        strip=False: the caller knows the line has none of Rekognition's keys."""
        self._start(length, byte_count)
        number = line_number or self._report.lines
        source = obj.get("source-ref") if isinstance(obj, dict) else None
        where = f"line {number} ({source})" if isinstance(source, str) else f"line {number}"
        if not isinstance(obj, dict) or not isinstance(source, str):
            self._flag("malformed", f"{where}: no source-ref")
            self._finish()
            return
        obj, flagged = strip_rcl_keys(obj) if strip else (obj, ())
        for found in flagged:
            self._flag("flagged-by-rekognition",
                       f"{where}: {found.attribute} box {found.index}: {', '.join(found.codes)}")
        for name, reason in failures(obj):
            self._flag("failed-object", f"{where}: {name}: {reason}")
        self._check_source(source, where, image_format, file_size)
        attributes = detection_attributes(obj)
        if any(metadata_type(obj, key) in IGNORED_TYPES for key in attribute_keys(obj)):
            self._flag("ignored-attributes", where)
        if not attributes:
            self._flag("not-detection", where)
        elif len(attributes) > 1:
            self._flag("several-attributes", f"{where}: {', '.join(attributes)}")
        problems = [(name, attribute_problem(obj, name)) for name in attributes]
        for name, problem in problems:
            if problem:
                self._flag("malformed", f"{where}: {name}: {problem}")
        well_formed = [name for name, problem in problems if not problem]
        if well_formed:
            # One line is one image: its boxes and labels are counted once, from one attribute.
            self._check_attribute(obj, well_formed[-1], where)
        self._finish()

    def add_image(self, *, source, width, height, boxes, class_names, length, file_size=0, image_format="",
                  human_annotated=True):
        """A line Loupe's exporter built, described without parsing it back.

        boxes: (class_id, left, top, width, height) integer pixels; class_names: {class_id: name}.
        The exporter's lines have the right shape by construction, so only Rekognition's rules apply.
        """
        self._start(length)
        where = f"line {self._report.lines} ({source})"
        self._check_source(source, where, image_format, file_size)
        self._check_image(where, width, height, boxes, class_names, human_annotated)
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
            self._flag("image-too-large", f"{where}: {size_text(file_size)}")

    def _check_attribute(self, obj, attribute, where):
        size = obj[attribute]["image_size"][0]
        class_map = obj[attribute + "-metadata"]["class-map"]
        # Float pixels (AWS's COCO converter writes them) are checked as Rekognition reads them.
        boxes = [(box["class_id"], box["left"], box["top"], box["width"], box["height"])
                 for box in obj[attribute]["annotations"]]
        names = {box[0]: class_map[str(box[0])] for box in boxes}
        human = obj[attribute + "-metadata"]["human-annotated"] == "yes"
        self._check_image(where, size["width"], size["height"], boxes, names, human)

    def _check_image(self, where, width, height, boxes, class_names, human=True):
        short, long = (width, height) if width < height else (height, width)
        if short < MIN_SIDE or long > MAX_SIDE or long > MAX_ASPECT * short:
            self._flag("image-dimensions", f"{where}: {width}x{height}")
        if not boxes:
            self._report.empty += 1
            self._flag("empty", where)
            return
        if not human:
            self._flag("machine-labels", where, len(boxes))
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
        images = self._report.label_images
        for name in {class_names[box[0]] for box in boxes}:
            images[name] = images.get(name, 0) + 1
        self._report.boxes += len(boxes)
        if outside:
            self._flag("box-outside", where, outside)
        if tiny:
            self._flag("tiny-box", where, tiny)
        if outside + tiny == len(boxes):
            self._flag("no-valid-boxes", where, outside + tiny)
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
            whole.append(("too-few-labels", "labels with boxes: none"))
        elif len(report.labels) == 1:
            whole.append(("one-label", f"label with boxes: {next(iter(report.labels))}"))
        if len(report.labels) > MAX_LABELS:
            whole.append(("too-many-labels", f"{len(report.labels)} labels"))
        if report.lines > MAX_LINES:
            whole.append(("too-many-lines", f"{report.lines:,} lines"))
        quota = REGIONAL_MAX_IMAGES.get(self.region)
        if quota is not None:
            limit = quota[1] if self.purpose == TEST else quota[0]
            if report.lines > limit:
                whole.append(("regional-quota", f"{report.lines:,} {self.purpose} images; "
                                                f"{self.region} allows {limit:,}"))
        if self.purpose == TEST:
            crowded = sorted(name for name, count in report.label_images.items()
                             if count > MAX_TEST_IMAGES_PER_LABEL)
            if crowded:
                whole.append(("too-many-test-images", ", ".join(
                    f"{name} ({report.label_images[name]:,} images)" for name in crowded)))
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


def validate_lines(lines, *, region=None, purpose=TRAIN):
    """The report for an iterable of manifest lines (text), e.g. an open file."""
    validator = ManifestValidator(region=region, purpose=purpose)
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
        obj = parse_line(text)
        if obj is None:
            continue
        sources.add(obj.get("source-ref"))
        labels.update(line_labels(obj))
    return sources, labels
