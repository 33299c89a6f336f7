"""Loading an existing Ground Truth manifest into an iteration.

Human-annotated object-detection attributes become the reviewed truth (Boxes with origin
"imported"); machine attributes ("no") become proposals of an imported model version, to be
reviewed, unless the caller trusts them. Lines are written in batches of BATCH_SIZE, one
transaction and a few bulk queries per batch; a line is still imported whole or not at all: a bad
line is reported with its number and never stops the rest (a batch whose bulk write fails is
written again line by line, one transaction per line). Importing the same file again changes nothing.
Proposals get their image's queue priority and a ProposalOutcome, as proposals from a run do.

Lines are read as AWS writes them (projects.manifests.lines): Rekognition's errors and warnings
are stripped at every level, and an attribute with a box Rekognition flagged (ERROR_*) is imported
as proposals to review, never as truth; Ground Truth's failed data objects are listed with their
failure-reason.

A person's decisions win: an image reviewed in Loupe keeps its review, and an image a reviewer
holds open is skipped. Writing an image's truth bumps its version, as a saved review does, so a
review page opened before the import is refused as stale instead of silently overwriting it.
"""

import os
import re
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from projects.bulkrows import TableStatistics, insert_rows, pairs_where_in
from projects.detections import uncertainty_score
from projects.geometry import Rect, clip_to_frame
from projects.manifests.export import source_resolver, storage_prefix
from projects.manifests.lines import (
    IGNORED_TYPES,
    LineError,
    detection_attributes,
    failures,
    may_carry_rcl_keys,
    metadata_type,
    parse_detection_attribute,
    parse_line,
    strip_rcl_keys,
)
from projects.models import Image, ModelVersion, Proposal, ProposalOutcome, lease_is_free, random_key
from projects.provisioning import ProjectSetupError, add_labels
from projects.rules import FORMAT_BY_SUFFIX
from reviewer.models import Box

# Lines written per transaction.
BATCH_SIZE = 1000


class _LineByLine(Exception):
    """The batch cannot be written in bulk as it is (e.g. one image twice): write it line by line."""


@dataclass
class ManifestImportReport:
    lines: int = 0
    imported: int = 0
    images_created: int = 0
    boxes: int = 0
    proposals: int = 0
    labels_created: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # (line number, message): the line was not imported
    warnings: list = field(default_factory=list)  # (line number, message)
    # (line number, message): Ground Truth data objects that failed (failure-reason, no labels).
    failed: list = field(default_factory=list)

    def summary(self):
        failed = f", {len(self.failed)} failed data objects" if self.failed else ""
        return (
            f"{self.imported} of {self.lines} lines imported ({self.images_created} new images, "
            f"{self.boxes} boxes, {self.proposals} proposals), {len(self.errors)} rejected"
            f"{failed}, {len(self.warnings)} warnings"
        )


class _Importer:
    def __init__(self, iteration, report, create_labels, trust_machine_labels):
        self.iteration = iteration
        self.project = iteration.project
        self.report = report
        self.create_labels = create_labels
        self.trust = trust_machine_labels
        self.model_versions = {}
        self._load_labels()
        last = iteration.images.aggregate(last=Max("position"))["last"]
        self.position = 0 if last is None else last + 1
        self.local_sources = _local_source_mapper(iteration)
        self.prefix = storage_prefix(iteration)
        # The boxes of a batch's existing images, read once for the batch (_KnownBoxes).
        self.known = None

    def _load_labels(self):
        self.labels = {label.name: label for label in self.project.labels.all()}

    def warn(self, number, message):
        self.report.warnings.append((number, message))

    def prepare(self, number, text):
        """(source, attributes) of a line to store, or None; raises LineError. Writes nothing."""
        obj = parse_line(text)
        if obj is None:
            return None
        # Lines Rekognition hands back carry errors and warnings at every level.
        obj, flagged = strip_rcl_keys(obj) if may_carry_rcl_keys(text) else (obj, ())
        source = obj.get("source-ref")
        if not isinstance(source, str) or not source:
            raise LineError("no source-ref: Loupe imports images by their address")
        if not _allowed_source(source, self.prefix):
            raise LineError(
                f"source-ref {source!r} is neither an s3:// address nor a file of this iteration "
                f"({self.prefix}...): Loupe imports images by those addresses only")
        for name, reason in failures(obj):
            self.report.failed.append(
                (number, f"{source}: Ground Truth job attribute {name!r} failed: {reason}"))
        attributes = self._attributes(number, obj, flagged)
        if not attributes:
            return None
        return source, attributes

    def line(self, number, text):
        prepared = self.prepare(number, text)
        return False if prepared is None else self.store_line(number, *prepared)

    def _rollback(self, position):
        # Whatever was written (labels, images, a model version) was rolled back with it.
        self.position = position
        self._load_labels()
        self.model_versions.clear()
        self.iteration.refresh_from_db(fields=["shown_model"])

    def store_line(self, number, source, attributes):
        """One line in its own transaction; True if it was imported."""
        position = self.position
        try:
            with transaction.atomic():
                return self._store(number, source, attributes)
        except Exception:
            self._rollback(position)
            raise

    def store_batch(self, items):
        """[(number, source, attributes)] in one transaction with bulk writes; the numbers imported.

        Raises (LineError, _LineByLine, a database error) with nothing written, the importer's state
        rolled back; the caller then stores the lines one by one.
        """
        position = self.position
        try:
            with transaction.atomic():
                return self._store_batch(items)
        except Exception:
            self._rollback(position)
            raise
        finally:
            self.known = None

    def _store_batch(self, items):
        candidates = {}
        for number, source, _attributes in items:
            local = self.local_sources(source)
            candidates[number] = [source, local] if local else [source]
        keys = [key for found in candidates.values() for key in found]
        if len(set(keys)) != len(keys):
            raise _LineByLine()  # an image twice in the batch: its lines must be written in order
        # Most lines of a big import are new images: find which exist without building the query
        # of a thousand sources, then read the few that do.
        ids = pairs_where_in(Image, "source", "id", keys, iteration=self.iteration.pk)
        existing = {
            image.source: image for image in Image.objects.filter(pk__in=ids.values()).order_by()
        } if ids else {}
        imported = []
        new = _NewRows(self.iteration)
        self.known = _KnownBoxes([image.pk for image in existing.values()])
        for number, source, attributes in items:
            self._ensure_labels({box[0] for attribute in attributes for box in attribute.boxes})
            found = [existing[key] for key in candidates[number] if key in existing]
            if found:
                image = min(found, key=lambda image: (image.position, image.pk))
                self._check_size(image, attributes[0].size)
                if self._store_on(number, image, attributes):
                    imported.append(number)
            else:
                self._new_image(number, source, attributes, new)
                imported.append(number)
        new.write()
        return imported

    def _new_image(self, number, source, attributes, new):
        """A line whose image is new: its rows are added to `new`, written in bulk by the batch."""
        width, height, depth = attributes[0].size
        frame = _Frame(width, height)
        truth = self._truth(number, attributes)
        status, no_objects, reviewed_at, version = Image.Status.PENDING, False, None, 0
        if truth is not None:
            boxes = [
                (source, label.id, left, top, box_width, box_height, truth.created)
                for label, (left, top, box_width, box_height), _c in self._framed(number, frame, truth)
            ]
            new.boxes.extend(boxes)
            self.report.boxes += len(boxes)
            # What _store_truth leaves on an image: reviewed, by nobody in Loupe, at its version 1.
            status, no_objects, reviewed_at, version = Image.Status.REVIEWED, not boxes, truth.created, 1
        scored, priority = [], 0.0
        proposal_attributes = self._proposal_attributes(attributes)
        for attribute in proposal_attributes:
            model_version = self._model_version(attribute.name)
            proposals = [
                (source, model_version.pk, label.id, left, top, box_width, box_height,
                 _confidence(confidence))
                for label, (left, top, box_width, box_height), confidence
                in self._framed(number, frame, attribute)
            ]
            scored.extend((row[-1], model_version.threshold_for(row[2])) for row in proposals)
            new.proposals.extend(proposals)
            new.outcomes.append((source, model_version.pk, len(proposals)))
            self.report.proposals += len(proposals)
        if proposal_attributes:
            priority = uncertainty_score(scored)
        new.images.append((
            source, os.path.basename(source)[:255] or source[:255], width, height, depth,
            FORMAT_BY_SUFFIX.get(os.path.splitext(source)[1].lower(), ""), self.position, random_key(),
            priority, status, no_objects, reviewed_at, version,
        ))
        self.position += 1
        self.report.images_created += 1

    def _attributes(self, number, obj, flagged):
        detection = detection_attributes(obj)
        for key in obj:
            metadata = obj.get(key + "-metadata")
            if key in detection or not isinstance(metadata, dict):
                continue
            kind = metadata_type(obj, key)
            reason = "not used for object detection" if kind in IGNORED_TYPES else "of an unknown type"
            self.warn(number, f"ignored attribute {key!r} ({kind}): {reason}")
        if not detection:
            if any(k.endswith("-metadata") for k in obj):
                return []
            raise LineError("no object-detection attribute (no '<name>' with '<name>-metadata')")
        attributes = [parse_detection_attribute(obj, name) for name in detection]
        for found in flagged:
            self.warn(number, f"{found.attribute} box {found.index}: Rekognition flagged it "
                              f"({', '.join(found.codes)}); the attribute's boxes are imported as "
                              "proposals to review, not as truth")
        names = {found.attribute for found in flagged}
        return [replace(a, flagged=True) if a.name in names else a for a in attributes]

    def _store(self, number, source, attributes):
        self._ensure_labels({box[0] for attribute in attributes for box in attribute.boxes})
        return self._store_on(number, self._image(source, attributes[0].size), attributes)

    def _truth(self, number, attributes):
        """The attribute that becomes the image's truth, or None."""
        trusted = [a for a in attributes if not a.flagged]
        truth = [a for a in trusted if a.human] or (trusted if self.trust else [])
        truth.sort(key=lambda a: a.created)
        if not truth:
            return None
        for older in truth[:-1]:
            self.warn(number, f"attribute {older.name!r} superseded by the newer {truth[-1].name!r}")
        return truth[-1]

    def _proposal_attributes(self, attributes):
        return [a for a in attributes if a.flagged or (not a.human and not self.trust)]

    def _store_on(self, number, image, attributes):
        now = timezone.now()
        if not image.lease_is_free_at(now):
            self.warn(number, f"{image.source} is open for review in Loupe (held until "
                              f"{image.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC): skipped; import again later")
            return False
        truth = self._truth(number, attributes)
        if truth is not None:
            self._store_truth(number, image, truth, now)
        scored, stored = [], False
        for attribute in self._proposal_attributes(attributes):
            self._store_proposals(number, image, attribute, scored)
            stored = True
        if stored:
            image.priority = uncertainty_score(scored)
            Image.objects.filter(pk=image.pk).update(priority=image.priority)
        return True

    def _ensure_labels(self, names):
        missing = sorted(names - set(self.labels))
        if not missing:
            return
        if not self.create_labels:
            raise LineError(
                f"label(s) {', '.join(missing)} not in project {self.project.slug!r}: add them in "
                "the project or import with --create-labels"
            )
        try:
            created = add_labels(project=self.project, names=missing)
        except ProjectSetupError as error:
            raise LineError(str(error)) from None
        self.labels.update({label.name: label for label in created})
        self.report.labels_created.extend(missing)

    def _image(self, source, size):
        local = self.local_sources(source)
        candidates = [source, local] if local else [source]
        # No default ordering (it joins iteration and project): the same choice, by position.
        image = self.iteration.images.filter(source__in=candidates).order_by("position", "id").first()
        if image is not None:
            self._check_size(image, size)
            return image
        image = self._unsaved_image(source, size)
        image.save(force_insert=True)
        return image

    @staticmethod
    def _check_size(image, size):
        width, height, _depth = size
        if (image.width, image.height) != (width, height):
            raise LineError(
                f"image_size {width}x{height} differs from the image's {image.width}x{image.height} "
                "in Loupe; the boxes would land in the wrong place"
            )

    def _unsaved_image(self, source, size):
        width, height, depth = size
        image = Image(
            iteration=self.iteration, source=source, name=os.path.basename(source)[:255] or source[:255],
            width=width, height=height, depth=depth, position=self.position,
            format=FORMAT_BY_SUFFIX.get(os.path.splitext(source)[1].lower(), ""),
        )
        self.position += 1
        self.report.images_created += 1
        return image

    def _store_truth(self, number, image, attribute, now):
        if _reviewed_by_person(image, self.known):
            self.warn(number, f"{image.source} was already reviewed in Loupe: kept that review")
            return
        framed = list(self._framed(number, image, attribute))
        rows = [(label.pk, *geometry) for label, geometry, _confidence in framed]
        if _same_truth(image, rows, attribute.created, self.known):
            self.report.boxes += len(rows)
            return
        boxes = [
            Box(image=image, label=label, left=left, top=top, width=width, height=height,
                origin=Box.Origin.IMPORTED, created_at=attribute.created)
            for label, (left, top, width, height), _confidence in framed
        ]
        # Take the image's next version the way a saved review does (reviewer.editor.reviews): a review
        # page opened on the old version is then refused as stale, and a reviewer who saved or
        # took the image since it was read wins.
        claimed = (
            Image.objects.filter(pk=image.pk, version=image.version).filter(lease_is_free(now))
            .update(version=F("version") + 1, status=Image.Status.REVIEWED, no_objects=not boxes,
                    reviewed_at=attribute.created, reviewed_by=None,
                    # An expired lease ends with the review, holder and expiry together.
                    leased_by=None, lease_expires_at=None)
        )
        if not claimed:
            self.warn(number, f"{image.source} was opened or saved by a reviewer during the import: "
                              "kept that; import again later")
            return
        image.boxes.filter(origin=Box.Origin.IMPORTED).delete()
        Box.objects.bulk_create(boxes)
        self.report.boxes += len(boxes)
        image.version += 1
        image.status, image.no_objects = Image.Status.REVIEWED, not boxes
        image.reviewed_at, image.reviewed_by = attribute.created, None
        image.leased_by, image.lease_expires_at = None, None

    def _framed(self, number, image, attribute):
        """[(label, box clipped to the frame, confidence 0..1)] of the boxes that are in the image."""
        width, height, labels = image.width, image.height, self.labels
        framed = []
        for index, (name, left, top, box_width, box_height, confidence) in enumerate(attribute.boxes):
            if 0 <= left and 0 <= top and 0 < box_width and 0 < box_height and left + box_width <= width \
                    and top + box_height <= height:
                # Wholly inside: clipping would give the same whole pixels back (a manifest's
                # boxes are whole pixels, so there is no float rounding in left + width - left).
                framed.append((labels[name], (left, top, box_width, box_height), confidence))
                continue
            frame = _inside((left, top, box_width, box_height), width, height)
            if frame is None:
                self.warn(number, f"{attribute.name} box {index} lies outside the image: skipped")
                continue
            framed.append((labels[name], frame, confidence))
        return framed

    def _proposals(self, number, image, attribute, model_version, scored):
        """The attribute's proposals on the image; adds (confidence, threshold) of each to scored."""
        proposals = []
        for label, (left, top, width, height), confidence in self._framed(number, image, attribute):
            proposal = Proposal(
                image=image, model_version=model_version, label=label, left=left, top=top,
                width=width, height=height, confidence=_confidence(confidence))
            proposals.append(proposal)
            scored.append((proposal.confidence, model_version.threshold_for(label.pk)))
        self.report.proposals += len(proposals)
        return proposals

    def _store_proposals(self, number, image, attribute, scored):
        model_version = self._model_version(attribute.name)
        proposals = self._proposals(number, image, attribute, model_version, scored)
        Proposal.objects.filter(image=image, model_version=model_version).delete()
        Proposal.objects.bulk_create(proposals)
        # What a run records: this model version has proposed on the image.
        ProposalOutcome.objects.filter(image=image, model_version=model_version).delete()
        ProposalOutcome.objects.create(
            image=image, model_version=model_version, ok=True, proposals=len(proposals))

    def _model_version(self, attribute):
        if attribute not in self.model_versions:
            model_version, _ = ModelVersion.objects.get_or_create(
                project=self.project, name=f"imported:{self.iteration.name}:{attribute}",
                defaults={"kind": ModelVersion.Kind.IMPORTED, "status": ModelVersion.Status.READY},
            )
            if self.iteration.shown_model_id is None:
                # Reviewers see the proposals of the iteration's model version.
                self.iteration.shown_model = model_version
                self.iteration.save(update_fields=["shown_model"])
            self.model_versions[attribute] = model_version
        return self.model_versions[attribute]


# Legacy us-east-1 buckets may have capitals and underscores; the key is any text without control bytes.
_S3_ADDRESS = re.compile(r"^s3://[A-Za-z0-9._-]+/[^\x00-\x1f]+$")


def _allowed_source(source, prefix):
    """An s3:// address, or a file under this iteration's own storage prefix.

    Any other path would name a file Loupe stores for another project or iteration (or the server's
    own files), which this project's members could then open through the image view.
    """
    if source.startswith("s3://"):
        return _S3_ADDRESS.match(source) is not None
    if not source.startswith(prefix):
        return False
    parts = source[len(prefix):].split("/")
    return all(part not in ("", ".", "..") and "\\" not in part and "\x00" not in part for part in parts)


def _reviewed_by_person(image, known=None):
    # Boxes a person drew count even when their reviewer account is gone (reviewed_by is then NULL).
    if image.status == Image.Status.REVIEWED and image.reviewed_by_id is not None:
        return True
    if known is not None:
        return image.pk in known.by_person
    return image.boxes.exclude(origin=Box.Origin.IMPORTED).exists()


def _same_truth(image, rows, created, known=None):
    """The image already holds exactly this imported truth (rows of label id, left, top, width,
    height): re-importing it changes nothing."""
    if (image.status, image.no_objects, image.reviewed_at) != (Image.Status.REVIEWED, not rows, created):
        return False
    if known is not None:
        stored = known.imported.get(image.pk, [])
    else:
        stored = image.boxes.filter(origin=Box.Origin.IMPORTED).order_by("id").values_list(
            "label_id", "left", "top", "width", "height")
    return [tuple(row) for row in stored] == rows


def _inside(geometry, frame_width, frame_height):
    """(left, top, width, height) clipped to the frame as floats, or None if nothing is left."""
    part = clip_to_frame(Rect(*geometry), frame_width, frame_height)
    return None if part is None else tuple(part)


def _local_source_mapper(iteration):
    """s3://published/prefix/name -> the local storage name the export derived it from."""
    published = iteration.project.published_images_uri.strip().rstrip("/")
    prefix = storage_prefix(iteration)
    resolve = source_resolver(iteration) if published else None

    def local(source):
        if resolve is None or not source.startswith(published + "/"):
            return None
        candidate = prefix + source[len(published) + 1:]
        return candidate if resolve(candidate) == source else None

    return local


class _KnownBoxes:
    """For a batch's existing images (each once in the batch): which hold boxes a person drew, and
    the imported boxes of each, in id order, as _same_truth compares them. Two queries a batch."""

    def __init__(self, image_ids):
        boxes = Box.objects.filter(image_id__in=image_ids).order_by()
        self.by_person = set(
            boxes.exclude(origin=Box.Origin.IMPORTED).values_list("image_id", flat=True).distinct())
        self.imported = {}
        rows = boxes.filter(origin=Box.Origin.IMPORTED).order_by("image_id", "id").values_list(
            "image_id", "label_id", "left", "top", "width", "height")
        for image_id, *row in rows:
            self.imported.setdefault(image_id, []).append(tuple(row))


class _Frame:
    """The size of an image not written yet: all _framed needs."""

    __slots__ = ("width", "height")

    def __init__(self, width, height):
        self.width, self.height = width, height


def _confidence(value):
    """A manifest confidence 0..1 as a proposal's 0..100."""
    return min(max(round(value * 100, 6), 0), 100)


class _NewRows:
    """Rows of a batch's new images as plain tuples, keyed by source, written once the batch is read."""

    IMAGE_FIELDS = ("source", "name", "width", "height", "depth", "format", "position", "random_key",
                    "priority", "status", "no_objects", "reviewed_at", "version", "iteration_id")

    def __init__(self, iteration):
        self.iteration = iteration
        self.images, self.boxes, self.proposals, self.outcomes = [], [], [], []

    def write(self):
        if not self.images:
            return
        iteration_id = self.iteration.pk
        insert_rows(Image, self.IMAGE_FIELDS, [(*row, iteration_id) for row in self.images])
        # The new images' ids, by their source (unique in the iteration).
        ids = pairs_where_in(Image, "source", "id", [row[0] for row in self.images], iteration=iteration_id)
        insert_rows(Box, ("image_id", "label_id", "left", "top", "width", "height", "created_at", "origin"),
                    [(ids[row[0]], *row[1:], Box.Origin.IMPORTED) for row in self.boxes])
        insert_rows(Proposal, ("image_id", "model_version_id", "label_id", "left", "top", "width", "height",
                               "confidence"),
                    [(ids[row[0]], *row[1:]) for row in self.proposals])
        insert_rows(ProposalOutcome, ("image_id", "model_version_id", "proposals", "ok"),
                    [(ids[row[0]], *row[1:], True) for row in self.outcomes])


def import_manifest(*, iteration, lines, create_labels=False, trust_machine_labels=False,
                    progress=None, total=None, batch_size=BATCH_SIZE):
    """Import an iterable of manifest lines (text) into the iteration; returns the report."""
    report = ManifestImportReport()
    importer = _Importer(iteration, report, create_labels, trust_machine_labels)
    statistics = TableStatistics(Image, Box, Proposal, ProposalOutcome)
    batch = []
    number = 0
    since = None
    for number, text in enumerate(lines, start=1):
        if since is None:
            since = (len(report.errors), len(report.warnings))
        if text.strip():
            report.lines += 1
            try:
                prepared = importer.prepare(number, text)
            except LineError as error:
                report.errors.append((number, str(error)))
            else:
                if prepared is not None:
                    batch.append((number, *prepared))
        if len(batch) >= batch_size:
            _write_batch(importer, report, batch)
            _ReportMark.order_by_line(report, since)
            batch, since = [], None
            statistics.lines_read(number)
            if progress and total:
                progress(min(number, total), total)
    if batch:
        _write_batch(importer, report, batch)
    if since is not None:
        _ReportMark.order_by_line(report, since)
    statistics.finished(number)
    if progress and total:
        progress(min(number, total), total)
    return report


def _write_batch(importer, report, batch):
    """Store the prepared lines in one transaction, or line by line if that fails."""
    kept = _ReportMark(report)
    try:
        imported = importer.store_batch(batch)
    except Exception:
        # Nothing of the batch was written: forget what it reported and write it line by line, so
        # the line at fault is reported with its number and the others are imported.
        kept.restore()
        imported = []
        for number, source, attributes in batch:
            try:
                if importer.store_line(number, source, attributes):
                    imported.append(number)
            except LineError as error:
                report.errors.append((number, str(error)))
    report.imported += len(imported)


class _ReportMark:
    """Where the report stood before a batch: to forget what the batch reported, or sort it."""

    COUNTS = ("images_created", "boxes", "proposals")
    LISTS = ("labels_created", "errors", "warnings", "failed")

    def __init__(self, report):
        self.report = report
        self.counts = {name: getattr(report, name) for name in self.COUNTS}
        self.lengths = {name: len(getattr(report, name)) for name in self.LISTS}

    def restore(self):
        for name, value in self.counts.items():
            setattr(self.report, name, value)
        for name, length in self.lengths.items():
            del getattr(self.report, name)[length:]

    @staticmethod
    def order_by_line(report, since):
        """A batch reports what it read of every line before what it wrote: put each line's
        messages back together in line order (stable: a line's own order is kept).
        since: the lengths of errors and warnings before the batch was read."""
        for name, start in zip(("errors", "warnings"), since, strict=True):
            found = getattr(report, name)
            found[start:] = sorted(found[start:], key=lambda entry: entry[0])
