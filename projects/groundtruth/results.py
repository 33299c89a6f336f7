"""Following Ground Truth jobs and bringing their adjusted boxes back as reviewed truth.

sync() asks DescribeLabelingJob for the job's status and LabelCounters; once the job has completed,
or was stopped with partial results, its output manifest is read and each line's adjusted boxes
become the image's reviewed Boxes under the job's service account, with origins from the line's
adjustment-status (unadjusted: accepted; adjusted: matched to the proposals sent as adjusted or added),
and a Review recording every decision. Lines Ground Truth could not label (failure-reason) are
reported. An image is reviewed once every job of its batch has labeled it; then, or once all the
batch's jobs have ended, its lease ends. Importing the same output again changes nothing.

The GT-output specifics (adjustment-status, several label attributes per line, each line's own
class-map, failed data objects) live here, not in projects.manifests.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from projects import geometry
from projects.aws import s3, sagemaker
from projects.groundtruth import contract
from projects.manifests.export import source_resolver
from projects.models import GroundTruthItem, GroundTruthJob, Image, Proposal
from reviewer.models import Box, Review

# How often the background task asks Ground Truth about a running job.
POLL_SECONDS = 300
LEASE_DAYS = 30
# An adjusted box overlapping a sent proposal at least this much is that proposal, adjusted.
MATCH_IOU = 0.5
RCL_KEYS = ("errors", "warnings", "cl-errors", "cl-metadata")


class GroundTruthError(Exception):
    """Following or importing a job failed; the message says what to do."""


@dataclass
class OutputLine:
    source: str
    boxes: list = field(default_factory=list)  # (label name, left, top, width, height)
    adjusted: bool = False
    created: datetime | None = None
    failure: str = ""


@dataclass
class ImportReport:
    lines: int = 0
    imported: int = 0
    unchanged: int = 0
    failed: list = field(default_factory=list)  # [source, failure-reason]
    errors: list = field(default_factory=list)  # [line number, message]

    def as_dict(self):
        return {"lines": self.lines, "imported": self.imported, "unchanged": self.unchanged,
                "failed": self.failed, "errors": self.errors}


def parse_date(text):
    """Any ISO 8601 form AWS writes (GT's no-offset microseconds, Z, offsets, a space) as UTC."""
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_output_line(text, attribute):
    """The job's attribute of one output line: its boxes by label name, or its failure-reason.

    Other attributes of the line (the prior proposals, earlier jobs' results) are left alone;
    class_id is resolved through this line's own class-map. ValueError says what is wrong.
    """
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    for key in RCL_KEYS:
        obj.pop(key, None)
    source = obj.get("source-ref")
    if not isinstance(source, str) or not source:
        raise ValueError("no source-ref")
    metadata = obj.get(attribute + "-metadata")
    if not isinstance(metadata, dict):
        raise ValueError(f"no {attribute}-metadata: the line holds no result of this job")
    if "failure-reason" in metadata:
        return OutputLine(source, failure=str(metadata["failure-reason"]) or "no reason given")
    body = obj.get(attribute)
    if not isinstance(body, dict):
        raise ValueError(f"no {attribute} attribute beside its metadata")
    class_map = metadata.get("class-map") or {}
    boxes = []
    for index, annotation in enumerate(body.get("annotations", [])):
        name = class_map.get(str(annotation.get("class_id")))
        if name is None:
            raise ValueError(f"{attribute} box {index}: class_id {annotation.get('class_id')!r} is not in "
                             "the line's class-map")
        try:
            rect = tuple(float(annotation[key]) for key in ("left", "top", "width", "height"))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{attribute} box {index}: left, top, width and height must be numbers") \
                from None
        boxes.append((name, *rect))
    created = None
    if metadata.get("creation-date"):
        try:
            created = parse_date(str(metadata["creation-date"]))
        except ValueError:
            created = None
    return OutputLine(source, boxes, metadata.get("adjustment-status") == "adjusted", created)


def sync(job, *, now=None):
    """Describe the job, record its status and progress; import its output once it has one."""
    now = now or timezone.now()
    if not job.arn and job.status == GroundTruthJob.Status.FAILED:
        settle(job)
        return job
    client = sagemaker.client(job.region)
    try:
        described = sagemaker.describe_labeling_job(job.name, sagemaker=client)
    except sagemaker.SageMakerError as error:
        raise GroundTruthError(f"{job.name}: {error}") from None
    job.status = described["LabelingJobStatus"]
    job.counters = dict(described.get("LabelCounters", {}))
    job.failure_reason = described.get("FailureReason", "")
    output = described.get("LabelingJobOutput", {}).get("OutputDatasetS3Uri", "")
    if output:
        job.output_manifest_uri = output
    job.checked_at = now
    job.save(update_fields=["status", "counters", "failure_reason", "output_manifest_uri", "checked_at"])
    if job.status == contract.COMPLETED and job.imported_at is None:
        import_output(job, now=now)
    elif job.status == contract.STOPPED and job.imported_at is None:
        try:
            import_output(job, now=now)
        except GroundTruthError as error:
            # Stopped before any result was written: nothing to import.
            job.report, job.imported_at = {"errors": [[0, str(error)]]}, now
            job.save(update_fields=["report", "imported_at"])
    if job.ended:
        settle(job)
    else:
        renew_leases(job, now)
    return job


def stop(job):
    """StopLabelingJob: workers get no new tasks; results so far are imported when it has stopped."""
    if job.ended or job.status == GroundTruthJob.Status.STOPPING:
        raise GroundTruthError(f"job {job.name} is {job.status}: nothing to stop")
    try:
        sagemaker.stop_labeling_job(job.name, sagemaker=sagemaker.client(job.region))
    except sagemaker.SageMakerError as error:
        raise GroundTruthError(f"{job.name}: {error}") from None
    job.status = GroundTruthJob.Status.STOPPING
    job.save(update_fields=["status"])
    return job


def output_lines(job):
    """The job's output manifest as lines of text; without an OutputDatasetS3Uri, where GT writes it:
    <output path>/<job>/manifests/output/output.manifest."""
    default = f"{job.output_path.rstrip('/')}/{job.name}/manifests/output/output.manifest"
    uri = job.output_manifest_uri or default
    try:
        location = s3.parse_s3_uri(uri)
        data = s3.read_object(location.bucket, location.key, region=job.region)
    except s3.S3Error as error:
        raise GroundTruthError(f"cannot read {job.name}'s output manifest {uri}: {error}") from None
    return data.decode("utf-8").splitlines()


def import_output(job, *, lines=None, now=None):
    """Import the job's output manifest (or the given lines); returns the ImportReport."""
    now = now or timezone.now()
    if lines is None:
        lines = output_lines(job)
    report = ImportReport()
    resolve = source_resolver(job.iteration)
    items = {}
    for item in job.items.select_related("image"):
        items[resolve(item.image.source)] = item
    touched = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        report.lines += 1
        try:
            line = parse_output_line(text, job.label_attribute)
        except ValueError as error:
            report.errors.append([number, str(error)])
            continue
        item = items.get(line.source)
        if item is None:
            report.errors.append([number, f"{line.source} was not sent to this job by Loupe: skipped"])
            continue
        if line.failure:
            report.failed.append([line.source, line.failure])
            GroundTruthItem.objects.filter(pk=item.pk).update(state=GroundTruthItem.State.FAILED,
                                                              failure_reason=line.failure)
            continue
        with transaction.atomic():
            changed = _store(job, item, line, now)
        if changed:
            report.imported += 1
            touched.append(item.image_id)
        else:
            report.unchanged += 1
    _finish_images(job, touched, now)
    job.report = report.as_dict()
    job.imported_at = now
    job.save(update_fields=["report", "imported_at"])
    return report


def _store(job, item, line, now):
    """Write the line's boxes as the image's truth for the job's labels; False when already there."""
    image = item.image
    user = job.service_user
    sent = {p.pk: p for p in Proposal.objects.filter(pk__in=item.proposals)}
    labels = {label.name: label for label in job.iteration.project.labels.filter(name__in=job.labels)}
    created = line.created or now
    rows, decisions, used = [], [], set()
    for name, left, top, width, height in line.boxes:
        label = labels.get(name)
        if label is None:
            continue
        rect = geometry.clamped(geometry.rounded(geometry.Rect(left, top, width, height)),
                                image.width, image.height)
        if rect.width <= 0 or rect.height <= 0:
            continue
        row = Box(image=image, label=label, left=rect.left, top=rect.top, width=rect.width,
                  height=rect.height, origin=Box.Origin.ADDED, reviewer=user, created_at=created)
        decision = {"proposal": None, "verdict": Box.Origin.ADDED.value, "label": label.pk, "box": list(rect)}
        proposal, overlap = _match(rect, label, sent, used, image)
        if proposal is not None and (not line.adjusted or overlap >= MATCH_IOU):
            used.add(proposal.pk)
            shown = _shown(proposal, image)
            row.proposal, row.iou, row.relabeled = proposal, overlap, proposal.label_id != label.pk
            same = shown == rect and not row.relabeled
            row.origin = Box.Origin.ACCEPTED if (same or not line.adjusted) else Box.Origin.ADJUSTED
            decision.update(proposal=proposal.pk, verdict=row.origin.value, confidence=proposal.confidence,
                            iou=overlap, relabeled=row.relabeled)
        rows.append(row)
        decisions.append(decision)
    decisions += [{"proposal": p.pk, "verdict": "rejected", "label": p.label_id, "confidence": p.confidence,
                   "hidden": False} for p in sent.values() if p.pk not in used]
    if item.state == GroundTruthItem.State.DONE and _same_boxes(image, user, rows):
        return False
    Box.objects.filter(image=image, label__in=labels.values()).delete()
    Box.objects.bulk_create(rows)
    Review.objects.filter(image=image, reviewer=user).delete()
    Review.objects.create(image=image, reviewer=user, submitted_at=created, no_objects=not rows,
                          changed=any(d["verdict"] != "accepted" for d in decisions), decisions=decisions)
    GroundTruthItem.objects.filter(pk=item.pk).update(state=GroundTruthItem.State.DONE, failure_reason="")
    item.state = GroundTruthItem.State.DONE
    return True


def _shown(proposal, image):
    return geometry.normalized_proposal(
        geometry.Rect(proposal.left, proposal.top, proposal.width, proposal.height),
        image.width, image.height)


def _match(rect, label, sent, used, image):
    """The unused sent proposal overlapping rect most (its own label first), and that IoU."""
    best, best_key = None, None
    for proposal in sent.values():
        if proposal.pk in used:
            continue
        overlap = geometry.iou(rect, _shown(proposal, image))
        key = (proposal.label_id == label.pk, overlap)
        if overlap > 0 and (best_key is None or key > best_key):
            best, best_key = proposal, key
    return best, (best_key[1] if best_key else 0.0)


def _same_boxes(image, user, rows):
    stored = sorted(Box.objects.filter(image=image, reviewer=user).values_list(
        "label_id", "left", "top", "width", "height", "origin", "proposal_id"))
    wanted = sorted((r.label.pk, r.left, r.top, r.width, r.height, r.origin, r.proposal_id) for r in rows)
    return stored == wanted


def _finish_images(job, image_ids, now):
    """Images every job of the batch has labeled become reviewed, by this job, and their lease ends."""
    if not image_ids:
        return
    open_items = GroundTruthItem.objects.filter(
        job__batch=job.batch, image_id__in=image_ids).exclude(state=GroundTruthItem.State.DONE)
    waiting = set(open_items.values_list("image_id", flat=True))
    for image_id in set(image_ids) - waiting:
        has_boxes = Box.objects.filter(image_id=image_id).exists()
        reviewed_at = Review.objects.filter(image_id=image_id, reviewer=job.service_user).values_list(
            "submitted_at", flat=True).first() or now
        Image.objects.filter(pk=image_id).update(
            version=F("version") + 1, status=Image.Status.REVIEWED, no_objects=not has_boxes,
            reviewed_by=job.service_user, reviewed_at=reviewed_at, leased_by=None, lease_expires_at=None,
        )


def settle(job):
    """Once every job of the batch has ended, images still leased to it go back to Loupe's queue;
    what no job labeled is recorded as unfinished."""
    if job.ended:
        job.items.filter(state=GroundTruthItem.State.SENT).update(state=GroundTruthItem.State.UNFINISHED)
    batch = GroundTruthJob.objects.filter(batch=job.batch)
    if batch.exclude(status__in=contract.ENDED).exists():
        return 0
    holders = batch.values_list("service_user_id", flat=True)
    image_ids = GroundTruthItem.objects.filter(job__batch=job.batch).values_list("image_id", flat=True)
    return Image.objects.filter(pk__in=image_ids, leased_by_id__in=holders).update(
        leased_by=None, lease_expires_at=None)


def renew_leases(job, now):
    holders = GroundTruthJob.objects.filter(batch=job.batch).values_list("service_user_id", flat=True)
    Image.objects.filter(groundtruth_items__job=job, leased_by_id__in=holders).update(
        lease_expires_at=now + timedelta(days=LEASE_DAYS))


def jobs_to_follow(iteration=None):
    """Jobs not yet ended, or ended and not yet imported."""
    jobs = GroundTruthJob.objects.select_related("iteration__project", "service_user")
    if iteration is not None:
        jobs = jobs.filter(iteration=iteration)
    return jobs.exclude(status__in=contract.ENDED, imported_at__isnull=False).exclude(
        status=GroundTruthJob.Status.FAILED)
