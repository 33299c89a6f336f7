"""The SageMaker Ground Truth object-detection manifest that Rekognition Custom Labels trains on.

Pure functions build one JSON line per image; `iter_manifest_records` streams an iteration's lines
from the database in chunks (a server-side cursor on PostgreSQL, one box query per chunk), so an
export of any size runs in flat memory. The line's grammar: projects.manifests.lines; the rules:
docs/rekognition-rules.md.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connections
from django.db.models import Q

from projects.geometry import frame_pixels
from projects.manifests.checks import ManifestValidator, ValidationReport, validate_lines
from projects.manifests.lines import DETECTION_TYPE, format_creation_date
from projects.models import Image, Proposal
from reviewer.models import Box

# validate_lines lives with the rules but is part of this module's interface for other features.
__all__ = [
    "ManifestError", "ManifestRecord", "ExportResult", "LineFormatter", "format_creation_date",
    "iter_manifest_lines", "iter_manifest_records", "manifest_filename", "source_resolver", "storage_prefix",
    "validate_export", "validate_lines", "write_manifest",
]

ATTRIBUTE = "bounding-box"
METADATA = ATTRIBUTE + "-metadata"
CHUNK_SIZE = 2000
CONTENT_TYPE = "application/jsonlines"


class ManifestError(Exception):
    """The iteration cannot be exported as asked; the message says what to change."""


@dataclass
class ManifestRecord:
    """One exported line: its JSON text and the facts the validator needs, without re-parsing."""

    image_id: int
    text: str
    source_ref: str
    width: int
    height: int
    boxes: list  # (class_id, left, top, width, height) integer pixels, as exported
    file_size: int = 0
    image_format: str = ""
    # {class_id: label name}, one dict shared by every record of an export.
    class_names: dict = field(default_factory=dict)
    # False for an unreviewed image exported with its model's proposals.
    human: bool = True

    def labels(self):
        """Names of the labels with at least one box on this line."""
        return {self.class_names[box[0]] for box in self.boxes}

    def validate(self, validator):
        validator.add_image(
            source=self.source_ref, width=self.width, height=self.height, boxes=self.boxes,
            class_names=self.class_names, length=len(self.text), file_size=self.file_size,
            image_format=self.image_format, human_annotated=self.human,
        )


@dataclass
class ExportResult:
    lines: int = 0
    bytes: int = 0
    report: ValidationReport = field(default_factory=ValidationReport)


def job_name(iteration):
    return f"loupe/{iteration.project.slug}/{iteration.name}"


def class_ids(labels):
    """{label id: class_id} by the project's label order, so a label keeps its class_id."""
    return {label.pk: index for index, label in enumerate(labels)}


def dumps(obj):
    # ASCII-only output: a line's length in characters is then its size in bytes.
    return json.dumps(obj)


_ANNOTATION = '{"class_id": %d, "left": %d, "top": %d, "width": %d, "height": %d}'
_LINE = (
    '{"source-ref": %s, "' + ATTRIBUTE + '": {"image_size": [{"width": %d, "height": %d, "depth": %d}], '
    '"annotations": [%s]}, "' + METADATA + '": {"objects": [%s], "class-map": {%s}, '
    '"type": "' + DETECTION_TYPE + '", "human-annotated": "%s", "creation-date": "%s", "job-name": %s}}'
)


class LineFormatter:
    """The JSON text of one image's manifest line, written from precomputed pieces.

    Exports spend most of their time serialising; formatting the fixed parts once per export is
    about twice as fast as json.dumps on a fresh dict per line. Tests hold it equal to json.dumps of
    the line built as a dict (tests/projects/test_manifest_export.py, build_line).
    """

    def __init__(self, *, class_names, job):
        self._entries = {class_id: f'"{class_id}": {dumps(name)}' for class_id, name in class_names.items()}
        self._class_maps = {}
        self._job = dumps(job)

    def clamped(self, boxes, width, height):
        """(class_id, left, top, width, height) in integer pixels inside the frame (frame_pixels)."""
        out = []
        for class_id, left, top, box_width, box_height, _confidence in boxes:
            # geometry.pixel() inlined (int() equals floor for the non-negative values kept here):
            # nearly every box is well inside the frame and skips frame_pixels' function calls.
            x0, y0 = int(left + 0.5), int(top + 0.5)
            x1, y1 = int(left + box_width + 0.5), int(top + box_height + 0.5)
            if 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height:
                out.append((class_id, x0, y0, x1 - x0, y1 - y0))
            else:
                out.append((class_id, *frame_pixels((left, top, box_width, box_height), width, height)))
        return out

    def text(self, *, source_ref, width, height, depth, boxes, clamped, human_annotated, creation_date):
        """The line's JSON text.

        boxes: (class_id, left, top, width, height, confidence 0..1), pixels as floats, read for the
        confidences; clamped: self.clamped(boxes, ...); creation_date: already formatted.
        """
        used = tuple(sorted({box[0] for box in clamped}))
        class_map = self._class_maps.get(used)
        if class_map is None:
            class_map = self._class_maps[used] = ", ".join(self._entries[class_id] for class_id in used)
        objects = ", ".join([
            '{"confidence": 1}' if box[5] == 1 and type(box[5]) is int else
            f'{{"confidence": {dumps(box[5])}}}' for box in boxes
        ])
        annotations = ", ".join([_ANNOTATION % box for box in clamped])
        return _LINE % (dumps(source_ref), width, height, depth, annotations, objects, class_map,
                        "yes" if human_annotated else "no", creation_date, self._job)


def storage_prefix(iteration):
    """Where image imports store an iteration's local files (see projects.images.importing)."""
    return f"images/{iteration.project.slug}/{iteration.name}/"


def source_resolver(iteration):
    """A function mapping an Image.source to the s3:// address the manifest must name."""
    published = iteration.project.published_images_uri.strip()
    prefix = storage_prefix(iteration)

    def resolve(source):
        if source.startswith("s3://"):
            return source
        if not published:
            raise ManifestError(
                f"image {source!r} is stored in Loupe, not in S3: copy the iteration's images to S3 "
                f"and set 'Published images uri' in the settings of project "
                f"{iteration.project.slug!r} (e.g. s3://bucket/{iteration.name}/)"
            )
        relative = source[len(prefix):] if source.startswith(prefix) else source
        return published.rstrip("/") + "/" + relative

    return resolve


def _rows(queryset):
    """All rows of a values_list queryset as plain tuples.

    The ORM builds the SQL; running it on a cursor skips per-row model machinery, which matters at
    a million boxes. Only float and integer columns go through here, which need no converters.
    """
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _for_images(image_ids):
    """A filter on a chunk's image ids that the planner reads as selective even without statistics.

    Right after a bulk load PostgreSQL has no statistics yet, guesses that a 2000-id IN matches
    half the table, and scans all of it for every chunk (28 s instead of 5 s at 250k images); the
    id range beside the IN keeps its estimate small, and costs nothing when statistics exist.
    """
    return Q(image_id__in=image_ids, image_id__gte=min(image_ids), image_id__lte=max(image_ids))


def _boxes_by_image(image_ids, ids):
    grouped = {}
    if not image_ids:
        return grouped
    rows = _rows(
        Box.objects.filter(_for_images(image_ids))
        .order_by("image_id", "id")
        .values_list("image_id", "label_id", "left", "top", "width", "height")
    )
    for image_id, label_id, left, top, width, height in rows:
        box = (ids[label_id], left, top, width, height, 1)
        found = grouped.get(image_id)
        if found is None:
            grouped[image_id] = [box]
        else:
            found.append(box)
    return grouped


def _proposals_by_image(image_ids, ids, model_version, thresholds):
    grouped = {}
    rows = _rows(
        Proposal.objects.filter(_for_images(image_ids), model_version=model_version, left__isnull=False)
        .order_by("image_id", "-confidence", "id")
        .values_list("image_id", "label_id", "left", "top", "width", "height", "confidence")
    )
    for image_id, label_id, left, top, width, height, confidence in rows:
        if confidence >= thresholds[label_id]:
            grouped.setdefault(image_id, []).append(
                (ids[label_id], left, top, width, height, round(confidence / 100, 4))
            )
    return grouped


def _image_rows(iteration, include_unreviewed, chunk_size):
    images = Image.objects.filter(iteration=iteration)
    if not include_unreviewed:
        images = images.filter(status=Image.Status.REVIEWED)
    rows = images.order_by("position", "id").values_list(
        "id", "source", "width", "height", "depth", "status", "no_objects", "reviewed_at",
        "file_size", "format",
    )
    chunk = []
    for row in rows.iterator(chunk_size=chunk_size):
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def iter_manifest_records(*, iteration, include_unreviewed=False, include_empty=True,
                          chunk_size=CHUNK_SIZE, now=None):
    """Yield a ManifestRecord per exported image, in file order.

    Reviewed images carry their Boxes (human-annotated "yes"); verified-empty ones export with no
    annotations unless include_empty is False. With include_unreviewed, images awaiting review
    carry the proposals of the iteration's model above each label's threshold (human-annotated
    "no"); those without any such proposal are left out, since nobody has said they are empty.
    """
    project = iteration.project
    labels = list(project.labels.order_by("order", "name", "id"))
    ids = class_ids(labels)
    names = {index: label.name for index, label in enumerate(labels)}
    model_version = iteration.shown_model if include_unreviewed else None
    if include_unreviewed and model_version is None:
        raise ManifestError(
            f"iteration {iteration} has no model version, so there are no proposals to export for "
            "unreviewed images: run proposals first, or export reviewed images only"
        )
    thresholds = model_version.thresholds_by_label([label.pk for label in labels]) if model_version else {}
    resolve = source_resolver(iteration)
    formatter = LineFormatter(class_names=names, job=job_name(iteration))
    fallback_date = format_creation_date(now or datetime.now(UTC))
    reviewed = Image.Status.REVIEWED
    for chunk in _image_rows(iteration, include_unreviewed, chunk_size):
        boxes = _boxes_by_image([row[0] for row in chunk if row[5] == reviewed], ids)
        pending = [row[0] for row in chunk if row[5] != reviewed]
        proposals = _proposals_by_image(pending, ids, model_version, thresholds) if pending else {}
        for image_id, source, width, height, depth, status, _empty, reviewed_at, size, fmt in chunk:
            human = status == reviewed
            found = boxes.get(image_id, ()) if human else proposals.get(image_id, ())
            if not found and not (human and include_empty):
                continue
            source_ref = resolve(source)
            clamped = formatter.clamped(found, width, height)
            text = formatter.text(
                source_ref=source_ref, width=width, height=height, depth=depth, boxes=found,
                clamped=clamped, human_annotated=human,
                creation_date=format_creation_date(reviewed_at) if reviewed_at else fallback_date,
            )
            yield ManifestRecord(image_id, text, source_ref, width, height, clamped, size, fmt, names, human)


def iter_manifest_lines(*, iteration, include_unreviewed=False, include_empty=True,
                        chunk_size=CHUNK_SIZE, now=None):
    """The manifest's lines as text, each ending with a newline."""
    for record in iter_manifest_records(
        iteration=iteration, include_unreviewed=include_unreviewed, include_empty=include_empty,
        chunk_size=chunk_size, now=now,
    ):
        yield record.text + "\n"


def write_manifest(*, iteration, out, include_unreviewed=False, include_empty=True,
                   chunk_size=CHUNK_SIZE, now=None, progress=None, on_record=None, regional_quota=True):
    """Write the manifest to the text stream `out` and validate it on the way.

    Returns an ExportResult whose report says whether Rekognition will accept the file; the
    caller decides what to do with a file that has errors (file exports delete it).
    on_record: called with each ManifestRecord once its line is written (e.g. to plan a split).
    regional_quota: False when the file is split afterwards, so the region's training and test
    quotas apply to the two halves rather than to the whole.
    """
    region = iteration.project.region if regional_quota else None
    validator = ManifestValidator(check_duplicates=False, region=region)
    total = _count_candidates(iteration, include_unreviewed) if progress else 0
    result = ExportResult()
    for done, record in enumerate(
        iter_manifest_records(
            iteration=iteration, include_unreviewed=include_unreviewed,
            include_empty=include_empty, chunk_size=chunk_size, now=now,
        ),
        start=1,
    ):
        out.write(record.text)
        out.write("\n")
        record.validate(validator)
        if on_record is not None:
            on_record(record)
        if progress and done % 1000 == 0:
            progress(min(done, total), total)
    result.report = validator.report()
    result.lines = result.report.lines
    result.bytes = result.report.bytes
    if progress:
        progress(total, total)
    return result


def validate_export(*, iteration, include_unreviewed=False, include_empty=True, chunk_size=CHUNK_SIZE):
    """The validation report of an export without writing it anywhere."""
    validator = ManifestValidator(check_duplicates=False, region=iteration.project.region)
    for record in iter_manifest_records(
        iteration=iteration, include_unreviewed=include_unreviewed, include_empty=include_empty,
        chunk_size=chunk_size,
    ):
        record.validate(validator)
    return validator.report()


def _count_candidates(iteration, include_unreviewed):
    images = iteration.images.all()
    if not include_unreviewed:
        images = images.filter(status=Image.Status.REVIEWED)
    return images.count()


def manifest_filename(iteration, suffix=""):
    return f"{iteration.project.slug}-{iteration.name}{suffix}.manifest"
