"""Amazon Rekognition Custom Labels: proposals (DetectCustomLabels) and model versions.

boto3 stays in projects.aws.rekognition; this module turns its answers into detections and
ModelVersion rows.
"""

import json
import random
import time
from dataclasses import dataclass, field

from django.db import transaction

from projects.aws import rekognition as aws
from projects.aws import s3
from projects.aws.errors import BAD_CREDENTIALS, THROTTLING, credentials_message
from projects.aws.regions import arn_mismatch, bucket_mismatch
from projects.aws.rekognition import DetectError, RekognitionError, call, describe_project_versions
from projects.detections import NOT_RUNNING_MESSAGE, Detection, ImageProposalError, ModelNotReady
from projects.geometry import Rect, all_finite, clip_to_frame
from projects.images.storage import read_image_bytes
from projects.models import ModelVersion
from projects.rules import MAX_DETECT_BYTES, MB, size_text

__all__ = ["RekognitionError", "RekognitionBackend", "start_model", "stop_model", "wait_for_model",
           "refresh_model_status",
           "sync_model_versions", "detections_from_custom_labels", "version_name_from_arn"]



def _client_for(model_version):
    return aws.client(model_version.project.region or None)


def ratio_box_to_pixels(box, width, height):
    """A DetectCustomLabels BoundingBox (ratios) as a pixel box clamped into the frame, or None
    when nothing of it lies inside the frame. Rounded to 1/1000 px so stored values are stable."""
    rect = Rect(box["Left"] * width, box["Top"] * height, box["Width"] * width, box["Height"] * height)
    part = clip_to_frame(rect, width, height)
    if part is None:
        return None
    pixel_width, pixel_height = round(part.width, 3), round(part.height, 3)
    if pixel_width <= 0 or pixel_height <= 0:
        return None
    return (round(part.left, 3), round(part.top, 3), pixel_width, pixel_height)


def detections_from_custom_labels(custom_labels, *, width, height, drop_outside=True):
    """CustomLabels as DetectCustomLabels returns them -> Detections in pixels of a width x height
    image; used for live responses and for imported prediction files alike.

    Labels without Geometry are image-level. ValueError names the first malformed item (no Name,
    Confidence not a number 0..100, a BoundingBox without four numbers or without area). A box
    wholly outside the frame is dropped (a live model's stray box), or is an error with
    drop_outside=False (an imported line that was probably made for another image).
    """
    if not isinstance(custom_labels, list):
        raise ValueError("CustomLabels is not a list")
    detections = []
    for index, item in enumerate(custom_labels):
        where = f"CustomLabels[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise ValueError(f"{where} has no Name")
        confidence = item.get("Confidence")
        if not all_finite(confidence) or not 0 <= confidence <= 100:
            raise ValueError(f"{where}: Confidence must be a number 0..100")
        ratios = (item.get("Geometry") or {}).get("BoundingBox")
        if ratios is None:
            detections.append(Detection(item["Name"], float(confidence), None))
            continue
        box = _pixel_box(ratios, width, height, where)
        if box is not None:
            detections.append(Detection(item["Name"], float(confidence), box))
        elif not drop_outside:
            raise ValueError(f"{where}: invalid box (it lies outside the {width}x{height} image)")
    return detections


def _pixel_box(ratios, width, height, where):
    keys = ("Left", "Top", "Width", "Height")
    if not isinstance(ratios, dict) or not all_finite(*(ratios.get(key) for key in keys)):
        raise ValueError(f"{where}: invalid box (BoundingBox needs numbers {', '.join(keys)})")
    if ratios["Width"] <= 0 or ratios["Height"] <= 0:
        raise ValueError(f"{where}: invalid box (Width and Height must be > 0)")
    return ratio_box_to_pixels(ratios, width, height)


class RekognitionBackend:
    """Proposals from a running Rekognition Custom Labels model version."""

    def __init__(self, model_version, *, client=None, sleep=time.sleep, jitter=random.random,
                 max_attempts=6, base_delay=0.5, max_delay=20.0, bucket_region=s3.bucket_region):
        if not model_version.arn:
            raise ModelNotReady(
                f"model version {model_version.name!r} has no Rekognition ARN: run "
                f"'manage.py sync_models {model_version.project.slug}'"
            )
        project = model_version.project
        problem = arn_mismatch(model_version.arn, project.region)
        if problem:
            raise ModelNotReady(f"model version {model_version.name!r}: {problem}")
        self.model_version = model_version
        # bucket -> why Rekognition cannot read it from this region ('' when it can or nobody knows)
        self._bucket_problems = {}
        self._bucket_region = bucket_region
        try:
            self.client = client or aws.client_or_error(model_version.project.region or None)
        except DetectError as error:
            raise ModelNotReady(error.message) from error
        self.sleep = sleep
        self.jitter = jitter
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    def detect(self, image):
        request = {
            "ProjectVersionArn": self.model_version.arn,
            "Image": _image_param(image),
            # Without it Rekognition hides everything under each label's assumed threshold; store
            # everything and let reviewers filter.
            "MinConfidence": 0,
        }
        try:
            response = self._call(request)
        except ImageProposalError as error:
            if error.code == "InvalidS3ObjectException" and "S3Object" in request["Image"]:
                self._check_bucket(request["Image"]["S3Object"]["Bucket"])
            raise
        try:
            return detections_from_custom_labels(
                response.get("CustomLabels", []), width=image.width, height=image.height
            )
        except ValueError as error:
            raise ImageProposalError("InvalidResponse", f"Rekognition answered {error}") from error

    def _call(self, request):
        """One image's call, retried while throttled until max_attempts calls reached Rekognition
        (botocore's own retries, read from each answer, count too)."""
        calls = retry = 0
        while True:
            try:
                return aws.detect_custom_labels(self.client, **request)
            except DetectError as error:
                if error.code in ("NoCredentials", "CredentialsError"):
                    raise ModelNotReady(error.message) from error
                if error.code in BAD_CREDENTIALS:
                    raise ModelNotReady(credentials_message(error.code, error.message)) from error
                if error.code == "ConnectionError":
                    raise ImageProposalError(error.code, error.message) from error
                calls += error.attempts
                if error.code not in THROTTLING or calls >= self.max_attempts:
                    raise self._translate(error.code, error.message, calls) from error
            retry += 1
            self.sleep(self.backoff(retry))

    def _check_bucket(self, bucket):
        """Stop the run when the bucket is in another region: every image in it would fail.
        Asked once per bucket, only after Rekognition could not read an image."""
        if bucket not in self._bucket_problems:
            region = self.model_version.project.region
            self._bucket_problems[bucket] = bucket_mismatch(
                bucket, self._bucket_region(bucket, region=region), region) or ""
        if self._bucket_problems[bucket]:
            raise ModelNotReady(self._bucket_problems[bucket])

    def backoff(self, attempt):
        """Seconds to wait before retry `attempt`: exponential, capped, half of it random so that
        many threads throttled together do not retry together."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + self.jitter() * ceiling / 2

    def _translate(self, code, message, attempts):
        version = self.model_version
        slug = version.project.slug
        if code == "ResourceNotReadyException":
            return ModelNotReady(
                f"{NOT_RUNNING_MESSAGE} (project page, or 'manage.py start_model {slug} "
                f"--model-version {version.name}'), wait until it is RUNNING, then run again"
            )
        if code == "ResourceNotFoundException":
            return ModelNotReady(
                f"model version {version.name!r} was not found in Rekognition ({message}): check "
                f"its ARN or run 'manage.py sync_models {slug}'"
            )
        if code == "AccessDeniedException":
            return ModelNotReady(
                f"access denied by Rekognition ({message}): allow rekognition:DetectCustomLabels "
                "and s3:GetObject on the images for these credentials"
            )
        if code in THROTTLING:
            message = (
                f"{message} (still throttled after {attempts} attempts: lower the run's "
                "concurrency or start the model with more inference units)"
            )
        return ImageProposalError(code or "ClientError", message)


def _image_param(image):
    if image.in_s3:
        location = s3.parse_s3_uri(image.source)
        return {"S3Object": {"Bucket": location.bucket, "Name": location.key}}
    try:
        data = read_image_bytes(image)
    except (OSError, s3.S3Error) as error:
        raise ImageProposalError("ImageUnreadable", f"cannot read the image file: {error}") from error
    if len(data) >= MAX_DETECT_BYTES:
        raise ImageProposalError(
            "ImageTooLargeException",
            f"the file is {size_text(len(data))} and images sent directly must be under "
            f"{MAX_DETECT_BYTES // MB} MB ({MAX_DETECT_BYTES:,} bytes): import large images from S3 instead",
        )
    return {"Bytes": data}


# --- model versions ------------------------------------------------------------------------------


def version_name_from_arn(arn):
    """arn:...:project/NAME/version/VERSION/123 -> VERSION."""
    _, sep, rest = arn.partition("/version/")
    return rest.split("/", 1)[0] if sep else ""


def _require_rekognition(model_version):
    if model_version.kind != ModelVersion.Kind.REKOGNITION or not model_version.arn:
        raise RekognitionError(
            f"model version {model_version.name!r} is not a Rekognition model with an ARN: only "
            "those can be started or stopped"
        )


# AWS recommends at least this many inference units for a model serving production traffic.
RECOMMENDED_UNITS = 2


def check_inference_units(min_units, max_units=None):
    """The (min, max) inference units a start asks for; RekognitionError when they cannot be."""
    if not isinstance(min_units, int) or min_units < 1:
        raise RekognitionError(f"at least 1 inference unit is needed, not {min_units!r}")
    if max_units is not None and (not isinstance(max_units, int) or max_units < min_units):
        raise RekognitionError(
            f"the maximum inference units ({max_units!r}) must be at least the minimum ({min_units})"
        )
    return min_units, max_units


def start_model(*, model_version, client=None, min_units=1, max_units=None):
    """Ask Rekognition to start serving on min_units inference units (auto-scaling up to max_units
    when given); it is billed per inference unit hour from now on. STARTING until it is RUNNING:
    see wait_for_model. Versions that finished training, were copied, stopped or failed can start.
    """
    _require_rekognition(model_version)
    min_units, max_units = check_inference_units(min_units, max_units)
    client = client or _client_for(model_version)
    request = {"ProjectVersionArn": model_version.arn, "MinInferenceUnits": min_units}
    if max_units is not None:
        request["MaxInferenceUnits"] = max_units
    response = call(client.start_project_version, **request)
    return _set_status(model_version, response["Status"], "")


def wait_for_model(*, model_version, client=None, progress=None, delay=30, max_attempts=40, sleep=None):
    """Wait until a started version is RUNNING (botocore's waiter); progress(status, seconds)."""
    _require_rekognition(model_version)
    project_arn = model_version.project.rekognition_project_arn
    if not project_arn:
        raise RekognitionError(
            f"project {model_version.project.slug!r} has no Rekognition project ARN: set it in the "
            "project settings"
        )
    client = client or _client_for(model_version)
    try:
        status = aws.wait_until_running(
            client, project_arn=project_arn, version_name=version_name_from_arn(model_version.arn),
            progress=progress, delay=delay, max_attempts=max_attempts, sleep=sleep,
        )
    except RekognitionError as error:
        if str(error).startswith("the model version failed to start"):
            _set_status(model_version, ModelVersion.Status.FAILED, str(error))
        raise
    return _set_status(model_version, status, "")


def stop_model(*, model_version, client=None):
    _require_rekognition(model_version)
    client = client or _client_for(model_version)
    response = call(client.stop_project_version, ProjectVersionArn=model_version.arn)
    return _set_status(model_version, response["Status"], "")


def refresh_model_status(*, model_version, client=None):
    _require_rekognition(model_version)
    client = client or _client_for(model_version)
    project_arn = model_version.project.rekognition_project_arn
    if not project_arn:
        raise RekognitionError(
            f"project {model_version.project.slug!r} has no Rekognition project ARN: set it in the "
            "project settings"
        )
    response = call(
        client.describe_project_versions,
        ProjectArn=project_arn, VersionNames=[version_name_from_arn(model_version.arn)],
    )
    descriptions = response.get("ProjectVersionDescriptions", [])
    if not descriptions:
        raise RekognitionError(
            f"Rekognition no longer lists model version {model_version.name!r}: it may have been deleted"
        )
    return _set_status(model_version, descriptions[0]["Status"], descriptions[0].get("StatusMessage", ""))


def _set_status(model_version, status, message):
    model_version.status = status
    model_version.status_message = message
    model_version.save(update_fields=["status", "status_message"])
    return model_version


@dataclass(frozen=True)
class EvaluationSummary:
    f1: float | None
    thresholds: dict  # {label: assumed threshold 0..100}
    training_images: int | None


def parse_evaluation_summary(data):
    """The training evaluation summary JSON -> F1, per-label thresholds (0..100), image count.

    The file gives thresholds as ratios (0..1) while DetectCustomLabels confidences are 0..100.
    """
    aggregated = data.get("AggregatedEvaluationResults", {})
    metrics = aggregated.get("Metrics", aggregated)
    thresholds = {}
    for result in data.get("LabelEvaluationResults", []):
        threshold = (result.get("Metrics") or {}).get("Threshold")
        if threshold is not None:
            thresholds[result["Label"]] = round(float(threshold) * 100, 4)
    return EvaluationSummary(
        f1=metrics.get("F1Score"),
        thresholds=thresholds,
        training_images=(data.get("EvaluationDetails") or {}).get("NumberOfTrainingImages"),
    )


def read_evaluation_summary(bucket, key, *, region=None):
    raw = s3.read_object(bucket, key, region=region)
    try:
        return parse_evaluation_summary(json.loads(raw))
    except (ValueError, AttributeError, KeyError, TypeError) as error:
        raise RekognitionError(f"s3://{bucket}/{key} is not an evaluation summary ({error})") from error


@dataclass
class SyncReport:
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # [(version name, what went wrong)]

    def summary(self):
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.problems)} with problems"
        )


def sync_model_versions(*, project, client=None):
    """Mirror the project's Rekognition versions into ModelVersion rows (status, F1, thresholds)."""
    if not project.rekognition_project_arn:
        raise RekognitionError(
            f"project {project.slug!r} has no Rekognition project ARN: set it in the project settings"
        )
    problem = arn_mismatch(project.rekognition_project_arn, project.region)
    if problem:
        raise RekognitionError(problem)
    client = client or _client_for_project(project)
    report = SyncReport()
    for description in describe_project_versions(project.rekognition_project_arn, rekognition=client):
        _sync_one(project, description, report)
    return report


def _client_for_project(project):
    return aws.client(project.region or None)


def _sync_one(project, description, report):
    arn = description["ProjectVersionArn"]
    name = version_name_from_arn(arn) or arn
    existing = project.model_versions.filter(name=name).first()
    if existing is not None and existing.kind != ModelVersion.Kind.REKOGNITION:
        report.problems.append((name, f"a {existing.get_kind_display()} model already has this name"))
        return
    evaluation = description.get("EvaluationResult") or {}
    fields = {
        "kind": ModelVersion.Kind.REKOGNITION,
        "arn": arn,
        "status": description.get("Status", ""),
        "status_message": description.get("StatusMessage", ""),
        "f1": evaluation.get("F1Score"),
    }
    summary_location = (evaluation.get("Summary") or {}).get("S3Object")
    if summary_location:
        try:
            summary = read_evaluation_summary(
                summary_location["Bucket"], summary_location["Name"], region=project.region or None
            )
        except (s3.S3Error, RekognitionError) as error:
            report.problems.append((name, f"evaluation summary not read: {error}"))
        else:
            # Rekognition names labels; the model keeps thresholds by label id. Names the project
            # does not have (a label deleted since training) are skipped.
            label_ids = dict(project.labels.values_list("name", "pk"))
            fields["thresholds"] = ModelVersion.thresholds_from({
                label_ids[label]: value for label, value in summary.thresholds.items() if label in label_ids
            })
            fields["training_images"] = summary.training_images
            if fields["f1"] is None:
                fields["f1"] = summary.f1
    with transaction.atomic():
        _, created = ModelVersion.objects.update_or_create(project=project, name=name, defaults=fields)
    (report.created if created else report.updated).append(name)
