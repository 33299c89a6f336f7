"""Sending an iteration's proposals to a SageMaker Ground Truth workforce for adjustment.

A dispatch plans one bounding-box adjustment job per group of labels (crowd-bounding-box shows at
most 10), checks everything Ground Truth would refuse before any AWS call, writes each job's input
manifest, label category file and worker template to the project's output location, creates the
jobs, records a GroundTruthJob (and a GroundTruthItem per image) for each, and leases the images to
the job's service account so Loupe's reviewers are not offered them meanwhile.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from projects import geometry
from projects.aws import s3, sagemaker
from projects.groundtruth import contract
from projects.groundtruth.results import settle
from projects.manifests.export import ManifestError, format_creation_date, source_resolver
from projects.models import GroundTruthItem, GroundTruthJob, Image, Proposal, lease_is_free

PRIOR_ATTRIBUTE = "loupe-proposals"
DETECTION_TYPE = "groundtruth/object-detection"
PREFIX = "groundtruth"
# Dispatched images stay leased to their job this long; every sync of a running job renews it.
LEASE_DAYS = 30
TASK_TIME_LIMIT_SECONDS = 600
MAX_CONCURRENT_TASKS = 1000
WORKERS_PER_OBJECT = 1

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
WORKTEAM_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):\d{12}:workteam/[\w+=,.@/-]+$")


class DispatchError(Exception):
    """The dispatch cannot go ahead; the message says what to change."""


@dataclass
class DispatchRequest:
    iteration: object
    workteam_arn: str
    role_arn: str
    max_labels_per_job: int = contract.MAX_LABELS_PER_JOB
    dry_run: bool = False
    user: object = None


@dataclass
class PlannedJob:
    name: str
    labels: list
    label_attribute: str
    manifest_uri: str
    labels_uri: str
    template_uri: str
    output_path: str
    request: dict
    files: dict  # uri -> text
    items: list  # (image id, [proposal ids])


@dataclass
class DispatchPlan:
    batch: str
    jobs: list = field(default_factory=list)
    images: int = 0
    cors: dict = field(default_factory=dict)  # bucket -> True when its CORS rule lets workers in
    created: list = field(default_factory=list)  # GroundTruthJob rows (not for a dry run)

    @property
    def cors_missing(self):
        return sorted(bucket for bucket, ok in self.cors.items() if not ok)


def cors_instructions(buckets):
    rule = json.dumps({"CORSRules": [contract.CORS_RULE]}, indent=2)
    return (
        f"bucket(s) {', '.join(buckets)} have no CORS rule that lets Ground Truth's worker UI fetch "
        f"the images (the labeling tasks would fail). Add this CORS configuration to each:\n{rule}"
    )


def service_user(job_name):
    """The inactive account a job's leases, boxes and reviews are recorded under: gt-<job name>."""
    user, created = get_user_model().objects.get_or_create(
        username=f"gt-{job_name}"[:150], defaults={"is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def dispatch(request, *, now=None):
    """Plan, check and (unless dry_run) send the jobs; returns the DispatchPlan."""
    now = now or timezone.now()
    plan = plan_dispatch(request, now=now)
    if plan.cors_missing and not request.dry_run:
        raise DispatchError(cors_instructions(plan.cors_missing))
    if request.dry_run:
        return plan
    _send(plan, request, now)
    return plan


def plan_dispatch(request, *, now):
    iteration = request.iteration
    project = iteration.project
    try:
        pre_lambda, acs_lambda = contract.lambda_arns(project.region)
        groups = contract.split_labels(
            project.labels.order_by("order", "name", "id").values_list("name", flat=True),
            request.max_labels_per_job,
        )
    except contract.ContractError as error:
        raise DispatchError(str(error)) from None
    _check_arns(request, project.region)
    output = project.output_location.strip()
    if not output:
        raise DispatchError(f"project {project.slug!r} has no output location: set it in the project "
                            "settings (s3://bucket/prefix/); the job files are written there")
    try:
        output_root = s3.parse_s3_uri(output)
    except s3.S3Error as error:
        raise DispatchError(str(error)) from None
    if not groups:
        raise DispatchError(f"project {project.slug!r} has no labels")
    images = list(dispatchable_images(iteration, now))
    if not images:
        raise DispatchError(f"iteration {iteration} has no images awaiting review that nobody holds")
    if len(images) > contract.MAX_OBJECTS_PER_JOB:
        raise DispatchError(
            f"{len(images):,} images: Ground Truth takes at most {contract.MAX_OBJECTS_PER_JOB:,} data "
            "objects per labeling job"
        )
    _check_images(images)
    resolve = source_resolver(iteration)
    try:
        sources = {image.pk: resolve(image.source) for image in images}
    except ManifestError as error:
        raise DispatchError(str(error)) from None
    batch = batch_name(iteration, now, parts=len(groups))
    plan = DispatchPlan(batch=batch, images=len(images))
    proposals = _proposals(iteration, [image.pk for image in images])
    base = f"s3://{output_root.bucket}/{_join(output_root.key, PREFIX)}"
    for index, labels in enumerate(groups, start=1):
        name = batch if len(groups) == 1 else f"{batch}-{index}"
        try:
            contract.check_job_name(name)
            contract.check_attribute_name(name, prior=PRIOR_ATTRIBUTE)
        except contract.ContractError as error:
            raise DispatchError(str(error)) from None
        job_uri = f"{base}/{name}"
        lines, items = _manifest_lines(images, sources, proposals, labels, name, now)
        files = {
            f"{job_uri}/input.manifest": "".join(line + "\n" for line in lines),
            f"{job_uri}/labels.json": json.dumps(contract.label_category_config(labels), indent=2) + "\n",
            f"{job_uri}/template.liquid.html": worker_template(project, labels),
        }
        manifest_uri, labels_uri, template_uri = list(files)
        output_path = f"{base}/output/"
        title = f"Adjust boxes: {', '.join(labels)}"[:128]
        job_request = {
            "LabelingJobName": name,
            "LabelAttributeName": name,
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": manifest_uri}}},
            "OutputConfig": {"S3OutputPath": output_path},
            "RoleArn": request.role_arn,
            "LabelCategoryConfigS3Uri": labels_uri,
            "HumanTaskConfig": {
                "WorkteamArn": request.workteam_arn,
                "UiConfig": {"UiTemplateS3Uri": template_uri},
                "PreHumanTaskLambdaArn": pre_lambda,
                "TaskTitle": title,
                "TaskDescription": f"Loupe {iteration}: fix the proposed boxes, add missing ones, "
                                   "delete wrong ones"[:255],
                "NumberOfHumanWorkersPerDataObject": WORKERS_PER_OBJECT,
                "TaskTimeLimitInSeconds": TASK_TIME_LIMIT_SECONDS,
                "MaxConcurrentTaskCount": MAX_CONCURRENT_TASKS,
                "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": acs_lambda},
            },
        }
        plan.jobs.append(PlannedJob(name, list(labels), name, manifest_uri, labels_uri, template_uri,
                                    output_path, job_request, files, items))
    names = [job.name for job in plan.jobs]
    taken = list(GroundTruthJob.objects.filter(name__in=names).values_list("name", flat=True))
    if taken:
        raise DispatchError(
            f"a labeling job named {', '.join(taken)} already exists: dispatch again in a second"
        )
    plan.cors = {bucket: _cors_ok(bucket, project.region) for bucket in sorted(
        {s3.parse_s3_uri(uri).bucket for uri in sources.values()})}
    return plan


def dispatchable_images(iteration, now):
    """Images awaiting review that no Loupe reviewer and no running job holds, in file order."""
    return (
        Image.objects.filter(iteration=iteration, status=Image.Status.PENDING)
        .filter(lease_is_free(now))
        .order_by("position", "id")
        .only("id", "source", "width", "height", "depth", "file_size")
    )


def batch_name(iteration, now, *, parts):
    """<project>-<iteration>-<UTC time>, hyphens only, short enough for a '-N' part suffix."""
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", f"{iteration.project.slug}-{iteration.name}").strip("-")
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    room = 63 - len(stamp) - 1 - (len(f"-{parts}") if parts > 1 else 0)
    return f"{stem[:room].rstrip('-')}-{stamp}"


def worker_template(project, labels):
    """The crowd-bounding-box template: the prior boxes as initial-value, the project's instructions."""
    instructions = escape(project.labeling_instructions.strip() or (
        "Adjust each proposed box so it fits its object tightly; delete boxes around no object; draw "
        "boxes around objects nobody proposed. Labels: " + ", ".join(labels) + "."
    )).replace("{", "&#123;").replace("}", "&#125;").replace("\n", "<br>")
    prior = PRIOR_ATTRIBUTE
    return (
        '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n'
        "<crowd-form>\n"
        "  <crowd-bounding-box\n"
        '    name="boundingBox"\n'
        '    src="{{ task.input.taskObject | grant_read_access }}"\n'
        '    header="Adjust the boxes"\n'
        '    labels="{{ task.input.labels | to_json | escape }}"\n'
        '    initial-value="[\n'
        f"      {{% for box in task.input.manifestLine.{prior}.annotations %}}\n"
        "        {% capture class_id %}{{ box.class_id }}{% endcapture %}\n"
        f"        {{% assign label = task.input.manifestLine.{prior}-metadata.class-map[class_id] %}}\n"
        "        {\n"
        "          label: {{label | to_json}},\n"
        "          left: {{box.left}},\n"
        "          top: {{box.top}},\n"
        "          width: {{box.width}},\n"
        "          height: {{box.height}},\n"
        "        },\n"
        "      {% endfor %}\n"
        '    ]"\n'
        "  >\n"
        f'    <full-instructions header="Instructions">{instructions}</full-instructions>\n'
        f"    <short-instructions>{instructions}</short-instructions>\n"
        "  </crowd-bounding-box>\n"
        "</crowd-form>\n"
    )


def _join(prefix, *parts):
    return "/".join([p for p in [prefix.strip("/"), *parts] if p])


def _check_arns(request, region):
    if not ROLE_ARN.match(request.role_arn or ""):
        raise DispatchError(f"{request.role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    match = WORKTEAM_ARN.match(request.workteam_arn or "")
    if not match:
        raise DispatchError(
            f"{request.workteam_arn!r} is not a work team ARN "
            "(arn:aws:sagemaker:REGION:ACCOUNT:workteam/private-crowd/NAME)"
        )
    if match.group(1) != region:
        raise DispatchError(
            f"work team {request.workteam_arn} is in {match.group(1)}, the project in {region}: Ground Truth "
            "needs both in the same region"
        )


def _check_images(images):
    problems = []
    for image in images:
        if image.file_size > contract.MAX_IMAGE_BYTES:
            problems.append(f"{image.source}: {image.file_size / 1024 / 1024:.1f} MB (at most 40 MB)")
        elif image.width * image.height > contract.MAX_IMAGE_PIXELS:
            problems.append(f"{image.source}: {image.width}x{image.height} (at most 100 megapixels)")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DispatchError(f"{len(problems)} image(s) exceed Ground Truth's input limits: {shown}")


def _proposals(iteration, image_ids):
    """{image id: [(proposal id, label name, left, top, width, height, confidence 0..100)]} above
    each label's threshold, of the iteration's model, highest confidence first."""
    model_version = iteration.shown_model
    if model_version is None:
        return {}
    thresholds = model_version.thresholds_by_label()
    grouped = {}
    rows = (
        Proposal.objects.filter(image_id__in=image_ids, model_version=model_version, left__isnull=False)
        .order_by("image_id", "-confidence", "id")
        .values_list("id", "image_id", "label_id", "label__name", "left", "top", "width", "height",
                     "confidence")
    )
    for pk, image_id, label_id, name, left, top, width, height, confidence in rows:
        if confidence >= thresholds.get(label_id, 0):
            grouped.setdefault(image_id, []).append((pk, name, left, top, width, height, confidence))
    return grouped


def _pixels(left, top, width, height, frame_width, frame_height):
    """The proposal as Loupe's editor shows it, in whole pixels; None when nothing is in the frame."""
    rect = geometry.normalized_proposal(geometry.Rect(left, top, width, height), frame_width, frame_height)
    return tuple(int(value) for value in rect) if rect.width > 0 and rect.height > 0 else None


def _manifest_lines(images, sources, proposals, labels, job_name, now):
    class_ids = {name: index for index, name in enumerate(labels)}
    created = format_creation_date(now)
    lines, items = [], []
    for image in images:
        annotations, objects, used, sent = [], [], set(), []
        for pk, name, left, top, width, height, confidence in proposals.get(image.pk, ()):
            if name not in class_ids:
                continue
            box = _pixels(left, top, width, height, image.width, image.height)
            if box is None:
                continue
            annotations.append({"class_id": class_ids[name], "left": box[0], "top": box[1],
                                "width": box[2], "height": box[3]})
            objects.append({"confidence": round(confidence / 100, 4)})
            used.add(class_ids[name])
            sent.append(pk)
        body = {"image_size": [{"width": image.width, "height": image.height, "depth": image.depth}],
                "annotations": annotations}
        metadata = {"objects": objects, "class-map": {str(i): labels[i] for i in sorted(used)},
                    "type": DETECTION_TYPE, "human-annotated": "no", "creation-date": created,
                    "job-name": f"loupe/{job_name}"}
        for name, value in ((PRIOR_ATTRIBUTE, body), (PRIOR_ATTRIBUTE + "-metadata", metadata)):
            size = len(json.dumps(value))
            if size > contract.MAX_ATTRIBUTE_CHARS:
                raise DispatchError(
                    f"{sources[image.pk]}: attribute {name} would be {size:,} characters; Ground Truth takes "
                    f"at most {contract.MAX_ATTRIBUTE_CHARS:,} (too many proposals on one image: raise the "
                    "label thresholds)"
                )
        lines.append(json.dumps({"source-ref": sources[image.pk], PRIOR_ATTRIBUTE: body,
                                 PRIOR_ATTRIBUTE + "-metadata": metadata}))
        items.append((image.pk, sent))
    return lines, items


def _cors_ok(bucket, region):
    try:
        return contract.cors_allows_workers(s3.bucket_cors_rules(bucket, region=region))
    except s3.S3Error as error:
        raise DispatchError(f"cannot read the CORS rules of bucket {bucket}: {error}") from None


def _send(plan, request, now):
    iteration = request.iteration
    region = iteration.project.region
    for job in plan.jobs:
        for uri, text in job.files.items():
            location = s3.parse_s3_uri(uri)
            content_type = "text/html" if uri.endswith(".html") else (
                "application/json" if uri.endswith(".json") else "application/jsonlines")
            try:
                s3.put_object(location.bucket, location.key, text.encode(), content_type=content_type,
                              region=region)
            except s3.S3Error as error:
                raise DispatchError(f"cannot write {uri}: {error}") from None
    rows = _record(plan, request, now)
    client = sagemaker.client(region)
    for job, row in zip(plan.jobs, rows, strict=True):
        try:
            arn = sagemaker.create_labeling_job(job.request, sagemaker=client)
        except sagemaker.SageMakerError as error:
            row.status, row.failure_reason = GroundTruthJob.Status.FAILED, f"CreateLabelingJob: {error}"
            row.save(update_fields=["status", "failure_reason"])
            settle(row)
            continue
        row.arn = arn
        row.save(update_fields=["arn"])
    plan.created = rows
    if all(row.status == GroundTruthJob.Status.FAILED for row in rows):
        raise DispatchError("; ".join(row.failure_reason for row in rows))


def _record(plan, request, now):
    """The GroundTruthJob and GroundTruthItem rows, and the images leased to the batch's first job,
    in one transaction; images a reviewer claimed since planning are left out."""
    iteration = request.iteration
    expires = now + timedelta(days=LEASE_DAYS)
    rows = []
    with transaction.atomic():
        holder = service_user(plan.jobs[0].name)
        image_ids = [image_id for image_id, _ in plan.jobs[0].items]
        free = set(
            Image.objects.filter(pk__in=image_ids, status=Image.Status.PENDING).filter(lease_is_free(now))
            .values_list("pk", flat=True)
        )
        Image.objects.filter(pk__in=free).update(leased_by=holder, lease_expires_at=expires)
        for job in plan.jobs:
            row = GroundTruthJob.objects.create(
                iteration=iteration, name=job.name, batch=plan.batch, labels=job.labels,
                label_attribute=job.label_attribute, prior_attribute=PRIOR_ATTRIBUTE,
                region=iteration.project.region, input_manifest_uri=job.manifest_uri,
                output_path=job.output_path,
                service_user=holder if job is plan.jobs[0] else service_user(job.name),
                created_by=request.user, created_at=now,
            )
            GroundTruthItem.objects.bulk_create(
                [GroundTruthItem(job=row, image_id=image_id, proposals=sent)
                 for image_id, sent in job.items if image_id in free],
                batch_size=2000,
            )
            rows.append(row)
    return rows
