"""Loading an existing Ground Truth manifest into an iteration.

Human-annotated object-detection attributes become the reviewed truth (Boxes with origin
"imported"); machine attributes ("no") become proposals of an imported model version, to be
reviewed, unless the caller trusts them. Each line is imported atomically; a bad line is reported
with its number and never stops the rest. Importing the same file again changes nothing.

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

from projects.geometry import Rect, clip_to_frame
from projects.manifests.export import source_resolver, storage_prefix
from projects.manifests.lines import (
    IGNORED_TYPES,
    LineError,
    detection_attributes,
    failures,
    metadata_type,
    parse_detection_attribute,
    parse_line,
    strip_rcl_keys,
)
from projects.models import Image, ModelVersion, Proposal, lease_is_free
from projects.provisioning import ProjectSetupError, add_labels
from projects.rules import FORMAT_BY_SUFFIX
from reviewer.models import Box


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

    def _load_labels(self):
        self.labels = {label.name: label for label in self.project.labels.all()}

    def warn(self, number, message):
        self.report.warnings.append((number, message))

    def line(self, number, text):
        obj = parse_line(text)
        if obj is None:
            return False
        # Lines Rekognition hands back carry errors and warnings at every level.
        obj, flagged = strip_rcl_keys(obj)
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
            return False
        position = self.position
        try:
            with transaction.atomic():
                stored = self._store(number, source, attributes)
        except Exception:
            # Whatever the line created (labels, images, a model version) was rolled back with it.
            self.position = position
            self._load_labels()
            self.model_versions.clear()
            self.iteration.refresh_from_db(fields=["shown_model"])
            raise
        return stored

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
        trusted = [a for a in attributes if not a.flagged]
        truth = [a for a in trusted if a.human] or (trusted if self.trust else [])
        truth.sort(key=lambda a: a.created)
        image = self._image(source, attributes[0].size)
        now = timezone.now()
        if not image.lease_is_free_at(now):
            self.warn(number, f"{image.source} is open for review in Loupe (held until "
                              f"{image.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC): skipped; import again later")
            return False
        if truth:
            for older in truth[:-1]:
                self.warn(number, f"attribute {older.name!r} superseded by the newer {truth[-1].name!r}")
            self._store_truth(number, image, truth[-1], now)
        for attribute in attributes:
            if attribute.flagged or (not attribute.human and not self.trust):
                self._store_proposals(number, image, attribute)
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
        width, height, depth = size
        local = self.local_sources(source)
        candidates = [source, local] if local else [source]
        image = self.iteration.images.filter(source__in=candidates).first()
        if image is not None:
            if (image.width, image.height) != (width, height):
                raise LineError(
                    f"image_size {width}x{height} differs from the image's {image.width}x{image.height} "
                    "in Loupe; the boxes would land in the wrong place"
                )
            return image
        image = Image.objects.create(
            iteration=self.iteration, source=source, name=os.path.basename(source)[:255] or source[:255],
            width=width, height=height, depth=depth, position=self.position,
            format=FORMAT_BY_SUFFIX.get(os.path.splitext(source)[1].lower(), ""),
        )
        self.position += 1
        self.report.images_created += 1
        return image

    def _store_truth(self, number, image, attribute, now):
        if _reviewed_by_person(image):
            self.warn(number, f"{image.source} was already reviewed in Loupe: kept that review")
            return
        boxes = [
            Box(image=image, label=label, left=left, top=top, width=width, height=height,
                origin=Box.Origin.IMPORTED, created_at=attribute.created)
            for label, (left, top, width, height), _confidence in self._framed(number, image, attribute)
        ]
        if _same_truth(image, boxes, attribute.created):
            self.report.boxes += len(boxes)
            return
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
        """(label, box clipped to the frame, confidence 0..1) for each box that is in the image."""
        for index, (name, *geometry, confidence) in enumerate(attribute.boxes):
            frame = _inside(geometry, image.width, image.height)
            if frame is None:
                self.warn(number, f"{attribute.name} box {index} lies outside the image: skipped")
                continue
            yield self.labels[name], frame, confidence

    def _store_proposals(self, number, image, attribute):
        model_version = self._model_version(attribute.name)
        proposals = [
            Proposal(image=image, model_version=model_version, label=label, left=left, top=top,
                     width=width, height=height, confidence=min(max(round(confidence * 100, 6), 0), 100))
            for label, (left, top, width, height), confidence in self._framed(number, image, attribute)
        ]
        Proposal.objects.filter(image=image, model_version=model_version).delete()
        Proposal.objects.bulk_create(proposals)
        self.report.proposals += len(proposals)

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


def _reviewed_by_person(image):
    # Boxes a person drew count even when their reviewer account is gone (reviewed_by is then NULL).
    if image.status == Image.Status.REVIEWED and image.reviewed_by_id is not None:
        return True
    return image.boxes.exclude(origin=Box.Origin.IMPORTED).exists()


def _same_truth(image, boxes, created):
    """The image already holds exactly this imported truth: re-importing it changes nothing."""
    if (image.status, image.no_objects, image.reviewed_at) != (Image.Status.REVIEWED, not boxes, created):
        return False
    stored = image.boxes.filter(origin=Box.Origin.IMPORTED).order_by("id").values_list(
        "label_id", "left", "top", "width", "height")
    return list(stored) == [(box.label.pk, box.left, box.top, box.width, box.height) for box in boxes]


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


def import_manifest(*, iteration, lines, create_labels=False, trust_machine_labels=False,
                    progress=None, total=None):
    """Import an iterable of manifest lines (text) into the iteration; returns the report."""
    report = ManifestImportReport()
    importer = _Importer(iteration, report, create_labels, trust_machine_labels)
    for number, text in enumerate(lines, start=1):
        if text.strip():
            report.lines += 1
            try:
                if importer.line(number, text):
                    report.imported += 1
            except LineError as error:
                report.errors.append((number, str(error)))
        if progress and total:
            progress(min(number, total), total)
    return report
