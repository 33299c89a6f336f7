import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from projects.aws import rekognition as aws_rekognition
from projects.detections import Detection, ImageProposalError, ModelNotReady
from projects.models import ModelVersion, ProposalOutcome, RunStatus
from projects.proposals.rekognition import (
    RekognitionBackend,
    RekognitionError,
    detections_from_custom_labels,
    parse_evaluation_summary,
    refresh_model_status,
    start_model,
    stop_model,
    sync_model_versions,
)
from projects.proposals.runs import create_proposal_run, run_proposals
from tests.factories import label, make_image, make_iteration, make_model_version, make_project

pytestmark = pytest.mark.django_db

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/1700000000000"
VERSION_ARN = f"{PROJECT_ARN.rsplit('/', 1)[0]}/version/logos.v1/1700000000001"


@pytest.fixture
def stubbed(aws_env):
    client = boto3.client("rekognition", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.fixture
def model():
    project = make_project("logos", rekognition_project_arn=PROJECT_ARN)
    return make_model_version(project, "logos.v1", kind=ModelVersion.Kind.REKOGNITION, arn=VERSION_ARN)


@pytest.fixture
def image(model):
    iteration = make_iteration(model.project, "v2")
    return make_image(iteration, source="s3://photos/v2/img-0007.jpg", width=1024, height=768)


def expected_request(bucket="photos", key="v2/img-0007.jpg"):
    return {
        "ProjectVersionArn": VERSION_ARN,
        "Image": {"S3Object": {"Bucket": bucket, "Name": key}},
        "MinConfidence": 0,
    }


def labelled(name, confidence, box=None):
    item = {"Name": name, "Confidence": confidence}
    if box is not None:
        left, top, width, height = box
        item["Geometry"] = {"BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top}}
    return item


def backend(model, client, sleeps=None, **options):
    sleeps = [] if sleeps is None else sleeps
    # The images' bucket is in the project's region unless a test says otherwise.
    options.setdefault("bucket_region", lambda bucket, region=None: "us-east-1")
    return RekognitionBackend(model, client=client, sleep=sleeps.append, jitter=lambda: 0.5, **options)


def test_detect_sends_the_s3_object_with_min_confidence_zero_and_converts_to_pixels(stubbed, model, image):
    client, stubber = stubbed
    stubber.add_response(
        "detect_custom_labels",
        {"CustomLabels": [labelled("aws-logo", 77.77, (0.079, 0.404, 0.199, 0.313))]},
        expected_request(),
    )
    detections = backend(model, client).detect(image)
    stubber.assert_no_pending_responses()
    assert detections == [Detection("aws-logo", 77.77, (80.896, 310.272, 203.776, 240.384))]


def test_boxes_are_clamped_into_the_frame_and_outside_boxes_dropped():
    detections = detections_from_custom_labels([
        labelled("a", 50.0, (-0.05, 0.9, 0.2, 0.2)),
        labelled("b", 60.0, (0.95, -0.1, 0.1, 0.3)),
        labelled("c", 70.0, (1.2, 0.1, 0.1, 0.1)),
    ], width=1000, height=500)
    assert detections == [
        Detection("a", 50.0, (0.0, 450.0, 150.0, 50.0)),
        Detection("b", 60.0, (950.0, 0.0, 50.0, 100.0)),
    ]


def test_custom_labels_are_validated_the_same_for_live_and_imported_predictions():
    cases = [
        ([labelled("a", 150.0)], "CustomLabels[0]: Confidence must be a number 0..100"),
        ([labelled("a", 50.0), {"Confidence": 50.0}], "CustomLabels[1] has no Name"),
        ([labelled("a", 50.0, (0.1, 0.1, 0.0, 0.2))],
         "CustomLabels[0]: invalid box (Width and Height must be > 0)"),
        ([{"Name": "a", "Confidence": 50.0, "Geometry": {"BoundingBox": {"Left": 0.1}}}],
         "CustomLabels[0]: invalid box (BoundingBox needs numbers Left, Top, Width, Height)"),
        ({"Name": "a"}, "CustomLabels is not a list"),
    ]
    for custom_labels, message in cases:
        with pytest.raises(ValueError) as error:
            detections_from_custom_labels(custom_labels, width=100, height=100)
        assert str(error.value) == message
    outside = [labelled("c", 70.0, (1.2, 0.1, 0.1, 0.1))]
    assert detections_from_custom_labels(outside, width=1000, height=500) == []
    with pytest.raises(ValueError) as error:
        detections_from_custom_labels(outside, width=1000, height=500, drop_outside=False)
    assert str(error.value) == "CustomLabels[0]: invalid box (it lies outside the 1000x500 image)"


def test_a_malformed_answer_fails_the_image(stubbed, model, image):
    client, stubber = stubbed
    stubber.add_response("detect_custom_labels", {"CustomLabels": [labelled("aws-logo", 101.0)]},
                         expected_request())
    with pytest.raises(ImageProposalError) as error:
        backend(model, client).detect(image)
    assert (error.value.code, error.value.message) == (
        "InvalidResponse", "Rekognition answered CustomLabels[0]: Confidence must be a number 0..100"
    )


def test_labels_without_geometry_are_image_level(stubbed, model, image):
    client, stubber = stubbed
    stubber.add_response(
        "detect_custom_labels",
        {"CustomLabels": [labelled("smile-logo", 12.5), labelled("aws-logo", 99.0, (0.5, 0.5, 0.25, 0.25))]},
        expected_request(),
    )
    assert backend(model, client).detect(image) == [
        Detection("smile-logo", 12.5, None),
        Detection("aws-logo", 99.0, (512.0, 384.0, 256.0, 192.0)),
    ]


def test_throttling_backs_off_with_jitter_then_succeeds(stubbed, model, image):
    client, stubber = stubbed
    stubber.add_client_error("detect_custom_labels", "ThrottlingException", "Rate exceeded",
                             expected_params=expected_request())
    stubber.add_client_error("detect_custom_labels", "ProvisionedThroughputExceededException",
                             "Throughput exceeded", expected_params=expected_request())
    stubber.add_response("detect_custom_labels", {"CustomLabels": []}, expected_request())
    sleeps = []
    assert backend(model, client, sleeps).detect(image) == []
    # Attempt n waits half of min(20, 0.5 * 2**(n-1)) plus the jitter's share of the other half.
    assert sleeps == [0.375, 0.75]
    stubber.assert_no_pending_responses()


def test_throttling_gives_up_after_the_bounded_attempts(stubbed, model, image):
    client, stubber = stubbed
    for _ in range(3):
        stubber.add_client_error("detect_custom_labels", "ThrottlingException", "Rate exceeded",
                                 expected_params=expected_request())
    sleeps = []
    with pytest.raises(ImageProposalError) as info:
        backend(model, client, sleeps, max_attempts=3).detect(image)
    assert (info.value.code, info.value.message) == (
        "ThrottlingException",
        "Rate exceeded (still throttled after 3 attempts: lower the run's concurrency or start the "
        "model with more inference units)",
    )
    assert sleeps == [0.375, 0.75]


@pytest.mark.parametrize("code", [
    "InvalidS3ObjectException", "ImageTooLargeException", "InvalidImageFormatException",
])
def test_per_image_errors_become_image_proposal_errors(stubbed, model, image, code):
    client, stubber = stubbed
    stubber.add_client_error("detect_custom_labels", code, "Unable to get object metadata from S3",
                             expected_params=expected_request())
    with pytest.raises(ImageProposalError) as info:
        backend(model, client).detect(image)
    assert (info.value.code, info.value.message) == (code, "Unable to get object metadata from S3")


@pytest.mark.parametrize(("code", "message"), [
    ("ResourceNotReadyException",
     "model is not running: start it (project page, or 'manage.py start_model logos --model-version "
     "logos.v1'), wait until it is RUNNING, then run again"),
    ("ResourceNotFoundException",
     "model version 'logos.v1' was not found in Rekognition (AWS says so): check its ARN or run "
     "'manage.py sync_models logos'"),
    ("AccessDeniedException",
     "access denied by Rekognition (AWS says so): allow rekognition:DetectCustomLabels and "
     "s3:GetObject on the images for these credentials"),
])
def test_model_level_errors_become_model_not_ready(stubbed, model, image, code, message):
    client, stubber = stubbed
    stubber.add_client_error("detect_custom_labels", code, "AWS says so", expected_params=expected_request())
    with pytest.raises(ModelNotReady) as info:
        backend(model, client).detect(image)
    assert str(info.value) == message


def test_local_images_are_sent_as_bytes(stubbed, model):
    client, stubber = stubbed
    iteration = make_iteration(model.project, "local")
    name = default_storage.save("images/local.jpg", ContentFile(b"\xff\xd8jpeg-bytes"))
    local = make_image(iteration, source=name, width=100, height=50)
    stubber.add_response(
        "detect_custom_labels", {"CustomLabels": [labelled("aws-logo", 50.0, (0.1, 0.2, 0.5, 0.5))]},
        {"ProjectVersionArn": VERSION_ARN, "Image": {"Bytes": b"\xff\xd8jpeg-bytes"}, "MinConfidence": 0},
    )
    assert backend(model, client).detect(local) == [Detection("aws-logo", 50.0, (10.0, 10.0, 50.0, 25.0))]


def test_local_images_of_4_mb_or_more_are_refused_without_a_call(stubbed, model):
    client, stubber = stubbed
    iteration = make_iteration(model.project, "local")
    name = default_storage.save("images/big.jpg", ContentFile(b"\0" * 4_000_000))
    big = make_image(iteration, source=name)
    with pytest.raises(ImageProposalError) as info:
        backend(model, client).detect(big)
    assert (info.value.code, info.value.message) == (
        "ImageTooLargeException",
        "the file is 4.0 MB and images sent directly must be under 4 MB (4,000,000 bytes): import large "
        "images from S3 instead",
    )


def test_a_model_without_arn_is_not_ready(model):
    model.arn = ""
    with pytest.raises(ModelNotReady, match="has no Rekognition ARN: run 'manage.py sync_models logos'"):
        RekognitionBackend(model, client=object())


# --- whole runs against the stubbed client ---------------------------------------------------------


def _images(model, count):
    iteration = make_iteration(model.project, "run")
    images = [
        make_image(iteration, source=f"s3://photos/run/{n}.jpg", width=200, height=100, position=n)
        for n in range(count)
    ]
    return iteration, images


def test_a_run_records_per_image_errors_and_survives_throttling(stubbed, model):
    client, stubber = stubbed
    iteration, images = _images(model, 3)
    request = [expected_request("photos", f"run/{n}.jpg") for n in range(3)]
    stubber.add_response("detect_custom_labels",
                         {"CustomLabels": [labelled("aws-logo", 90.0, (0.0, 0.0, 0.5, 0.5))]}, request[0])
    stubber.add_client_error("detect_custom_labels", "InvalidImageFormatException",
                             "Request has invalid image format", expected_params=request[1])
    stubber.add_client_error("detect_custom_labels", "ThrottlingException", "Rate exceeded",
                             expected_params=request[2])
    stubber.add_response("detect_custom_labels", {"CustomLabels": [labelled("smile-logo", 40.0)]}, request[2])
    sleeps = []
    run = create_proposal_run(iteration=iteration, model_version=model, concurrency=1)
    run = run_proposals(run=run, backend=backend(model, client, sleeps))
    stubber.assert_no_pending_responses()
    assert (run.status, run.done, run.failed, run.proposals) == (RunStatus.SUCCEEDED, 2, 1, 2)
    assert sleeps == [0.375]
    outcomes = list(ProposalOutcome.objects.order_by("image__position").values_list(
        "image__name", "ok", "error_code", "error", "proposals"))
    assert outcomes == [
        ("0.jpg", True, "", "", 1),
        ("1.jpg", False, "InvalidImageFormatException", "Request has invalid image format", 0),
        ("2.jpg", True, "", "", 1),
    ]
    assert list(images[0].proposals.values_list("left", "top", "width", "height", "confidence")) == [
        (0.0, 0.0, 100.0, 50.0, 90.0)
    ]


def test_resource_not_ready_stops_the_run_early(stubbed, model):
    client, stubber = stubbed
    iteration, images = _images(model, 6)
    stubber.add_response("detect_custom_labels", {"CustomLabels": []},
                         expected_request("photos", "run/0.jpg"))
    for n in (1, 2):
        stubber.add_client_error("detect_custom_labels", "ResourceNotReadyException", "Model not running",
                                 expected_params=expected_request("photos", f"run/{n}.jpg"))
    run = create_proposal_run(iteration=iteration, model_version=model, concurrency=1)
    run = run_proposals(run=run, backend=backend(model, client))
    assert run.status == RunStatus.STOPPED
    assert run.error.startswith("model is not running: start it")
    assert (run.done, run.failed, run.total) == (1, 0, 6)
    assert list(ProposalOutcome.objects.values_list("image__name", flat=True)) == ["0.jpg"]


# --- model versions --------------------------------------------------------------------------------


def test_start_and_stop_model(stubbed, model):
    client, stubber = stubbed
    stubber.add_response("start_project_version", {"Status": "STARTING"},
                         {"ProjectVersionArn": VERSION_ARN, "MinInferenceUnits": 1})
    stubber.add_response("stop_project_version", {"Status": "STOPPING"}, {"ProjectVersionArn": VERSION_ARN})
    start_model(model_version=model, client=client)
    assert ModelVersion.objects.get(pk=model.pk).status == "STARTING"
    stop_model(model_version=model, client=client)
    assert ModelVersion.objects.get(pk=model.pk).status == "STOPPING"


def test_start_model_error_is_one_clear_line(stubbed, model):
    client, stubber = stubbed
    stubber.add_client_error("start_project_version", "ResourceInUseException", "Version is starting")
    with pytest.raises(RekognitionError) as info:
        start_model(model_version=model, client=client)
    assert str(info.value) == (
        "the model is busy (Version is starting): wait for its current start or stop to finish"
    )


def test_only_rekognition_models_start(model):
    imported = make_model_version(model.project, "csv", kind=ModelVersion.Kind.IMPORTED)
    with pytest.raises(RekognitionError, match="'csv' is not a Rekognition model with an ARN"):
        start_model(model_version=imported, client=object())


def test_refresh_model_status(stubbed, model):
    client, stubber = stubbed
    stubber.add_response(
        "describe_project_versions",
        {"ProjectVersionDescriptions": [{"ProjectVersionArn": VERSION_ARN, "Status": "RUNNING",
                                         "StatusMessage": "The model is running."}]},
        {"ProjectArn": PROJECT_ARN, "VersionNames": ["logos.v1"]},
    )
    refresh_model_status(model_version=model, client=client)
    model.refresh_from_db()
    assert (model.status, model.status_message) == ("RUNNING", "The model is running.")


SUMMARY = {
    "Version": 1,
    "AggregatedEvaluationResults": {"Metrics": {"F1Score": 0.91, "Precision": 0.9, "Recall": 0.92}},
    "EvaluationDetails": {"NumberOfTrainingImages": 240, "NumberOfTestingImages": 60},
    "LabelEvaluationResults": [
        {"Label": "aws-logo",
         "Metrics": {"F1Score": 0.93, "Precision": 0.9, "Recall": 0.96, "Threshold": 0.725}},
        {"Label": "smile-logo",
         "Metrics": {"F1Score": 0.88, "Precision": 0.9, "Recall": 0.86, "Threshold": 0.2}},
        # A label the project no longer has: its threshold is not kept.
        {"Label": "retired-logo",
         "Metrics": {"F1Score": 0.5, "Precision": 0.5, "Recall": 0.5, "Threshold": 0.6}},
    ],
}


def test_parse_evaluation_summary_converts_thresholds_to_percent():
    summary = parse_evaluation_summary(SUMMARY)
    assert (summary.f1, summary.thresholds, summary.training_images) == (
        0.91, {"aws-logo": 72.5, "smile-logo": 20.0, "retired-logo": 60.0}, 240
    )


def _description(name, status, **extra):
    arn = f"arn:aws:rekognition:us-east-1:123456789012:project/logos/version/{name}/1700000000001"
    return {"ProjectVersionArn": arn, "Status": status, "StatusMessage": f"{name} is {status}",
            "CreationTimestamp": datetime(2026, 11, 1, tzinfo=UTC), **extra}


def test_sync_reads_every_page_and_the_summary_from_s3(stubbed, model, s3):
    client, stubber = stubbed
    s3.create_bucket(Bucket="out")
    s3.put_object(Bucket="out", Key="eval/logos.v2.json", Body=json.dumps(SUMMARY).encode())
    evaluation = {"F1Score": 0.9, "Summary": {"S3Object": {"Bucket": "out", "Name": "eval/logos.v2.json"}}}
    stubber.add_response(
        "describe_project_versions",
        {"ProjectVersionDescriptions": [_description("logos.v1", "STOPPED")], "NextToken": "page-2"},
        {"ProjectArn": PROJECT_ARN},
    )
    stubber.add_response(
        "describe_project_versions",
        {"ProjectVersionDescriptions": [
            _description("logos.v2", "TRAINING_COMPLETED", EvaluationResult=evaluation),
            _description("logos.v3", "TRAINING_FAILED", EvaluationResult={
                "Summary": {"S3Object": {"Bucket": "out", "Name": "missing.json"}}}),
        ]},
        {"ProjectArn": PROJECT_ARN, "NextToken": "page-2"},
    )
    report = sync_model_versions(project=model.project, client=client)
    stubber.assert_no_pending_responses()
    assert (report.created, report.updated) == (["logos.v2", "logos.v3"], ["logos.v1"])
    assert report.problems == [("logos.v3", "evaluation summary not read: object not found in S3")]
    rows = {
        row.name: (row.kind, row.status, row.f1, row.thresholds, row.training_images)
        for row in model.project.model_versions.all()
    }
    aws, smile = (str(label(model.project, name).pk) for name in ("aws-logo", "smile-logo"))
    assert rows == {
        "logos.v1": ("rekognition", "STOPPED", None, {}, None),
        "logos.v2": ("rekognition", "TRAINING_COMPLETED", 0.9, {aws: 72.5, smile: 20.0}, 240),
        "logos.v3": ("rekognition", "TRAINING_FAILED", None, {}, None),
    }


def test_sync_refuses_to_overwrite_another_kind(stubbed, model):
    client, stubber = stubbed
    make_model_version(model.project, "local.v1", kind=ModelVersion.Kind.LOCAL)
    stubber.add_response("describe_project_versions",
                         {"ProjectVersionDescriptions": [_description("local.v1", "RUNNING")]},
                         {"ProjectArn": PROJECT_ARN})
    report = sync_model_versions(project=model.project, client=client)
    assert report.problems == [("local.v1", "a Loupe offline detector model already has this name")]
    assert model.project.model_versions.get(name="local.v1").kind == "local"


def test_sync_needs_the_project_arn(model):
    model.project.rekognition_project_arn = ""
    with pytest.raises(RekognitionError) as info:
        sync_model_versions(project=model.project, client=object())
    assert str(info.value) == (
        "project 'logos' has no Rekognition project ARN: set it in the project settings"
    )


def test_a_client_that_cannot_be_created_stops_the_run(model, monkeypatch):
    from botocore.exceptions import ProfileNotFound

    def no_profile(region=None):
        raise ProfileNotFound(profile="labs")

    monkeypatch.setattr(aws_rekognition, "client", no_profile)
    iteration, images = _images(model, 2)
    run = run_proposals(run=create_proposal_run(iteration=iteration, model_version=model, concurrency=1))
    assert (run.status, run.error) == (
        RunStatus.STOPPED,
        "cannot set up the Rekognition client: The config profile (labs) could not be found",
    )


class RaisingClient:
    def __init__(self, error):
        self.error = error

    def detect_custom_labels(self, **request):
        raise self.error


def test_missing_credentials_stop_and_connection_errors_fail_the_image(model, image):
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    with pytest.raises(ModelNotReady) as info:
        backend(model, RaisingClient(NoCredentialsError())).detect(image)
    assert str(info.value) == (
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    )
    offline = RaisingClient(EndpointConnectionError(endpoint_url="https://rekognition.us-east-1.amazonaws.com/"))
    with pytest.raises(ImageProposalError) as info:
        backend(model, offline).detect(image)
    assert (info.value.code, info.value.message) == (
        "ConnectionError",
        'Could not connect to the endpoint URL: "https://rekognition.us-east-1.amazonaws.com/"',
    )
