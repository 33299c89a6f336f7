"""Rekognition calls as AWS really answers them (issue 11, points 11-12): credentials that stop a
run once, LimitExceededException as throttling, botocore's retries counted, regions checked once."""

import pytest

from projects.aws import rekognition as aws_rekognition
from projects.detections import Detection, ImageProposalError, ModelNotReady
from projects.forms import ProjectSettingsForm
from projects.images.importing import ImportSourceError, import_s3_prefix
from projects.models import ModelVersion, ProposalOutcome, RunStatus
from projects.proposals.rekognition import RekognitionBackend
from projects.proposals.runs import create_proposal_run, run_proposals
from tests.factories import make_image, make_iteration, make_model_version, make_project

pytestmark = pytest.mark.django_db

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/1700000000000"
VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.v1/1700000000001"
RENEW = "renew them ('aws sso login', fresh session keys, or the right AWS_PROFILE) and run again"


@pytest.fixture
def model():
    project = make_project("logos", rekognition_project_arn=PROJECT_ARN)
    return make_model_version(project, "logos.v1", kind=ModelVersion.Kind.REKOGNITION, arn=VERSION_ARN)


def request(key):
    return {"ProjectVersionArn": VERSION_ARN, "Image": {"S3Object": {"Bucket": "photos", "Name": key}},
            "MinConfidence": 0}


def images(model, count):
    iteration = make_iteration(model.project, "v2")
    for n in range(count):
        make_image(iteration, source=f"s3://photos/v2/{n}.jpg", width=200, height=100, position=n)
    return iteration


def quiet_backend(model, sleeps, **options):
    options.setdefault("bucket_region", lambda bucket, region=None: "us-east-1")
    return RekognitionBackend(model, sleep=sleeps.append, jitter=lambda: 0.5, **options)


@pytest.mark.parametrize(("code", "message"), [
    ("ExpiredTokenException", "The security token included in the request is expired"),
    ("UnrecognizedClientException", "The security token included in the request is invalid."),
    ("InvalidSignatureException", "The request signature we calculated does not match the signature "
                                  "you provided."),
])
def test_refused_credentials_stop_the_run_with_one_message(rekognition_stubber, model, code, message):
    iteration = images(model, 3)
    # The run keeps one more call in flight than its concurrency: both meet the same refusal.
    for n in range(2):
        rekognition_stubber.add_client_error("detect_custom_labels", code, message, http_status_code=400,
                                             expected_params=request(f"v2/{n}.jpg"))
    run = run_proposals(run=create_proposal_run(iteration=iteration, model_version=model, concurrency=1))
    assert (run.status, run.error) == (
        RunStatus.STOPPED, f"AWS refused the credentials ({code}: {message}): {RENEW}")
    # Not one failure per image: the other images are left for a run with good credentials.
    assert (run.done, run.failed) == (0, 0)
    assert ProposalOutcome.objects.count() == 0


class RaisingClient:
    def __init__(self, error):
        self.error = error

    def detect_custom_labels(self, **request):
        raise self.error


def test_an_expired_sso_session_stops_the_run(model):
    from botocore.exceptions import TokenRetrievalError, UnauthorizedSSOTokenError

    iteration = images(model, 1)
    with pytest.raises(ModelNotReady) as info:
        quiet_backend(model, [], client=RaisingClient(UnauthorizedSSOTokenError())).detect(
            iteration.images.get())
    assert str(info.value) == (
        "AWS refused the credentials (UnauthorizedSSOTokenError: The SSO session associated with this "
        f"profile has expired or is otherwise invalid. To refresh this SSO session run aws sso login "
        f"with the corresponding profile.): {RENEW}")
    expired = TokenRetrievalError(provider="sso", error_msg="Token has expired and refresh failed")
    with pytest.raises(ModelNotReady) as info:
        quiet_backend(model, [], client=RaisingClient(expired)).detect(iteration.images.get())
    assert str(info.value) == (
        "AWS refused the credentials (TokenRetrievalError: Error when retrieving token from sso: Token "
        f"has expired and refresh failed): {RENEW}")


def test_limit_exceeded_is_throttling_backed_off_and_retried(rekognition_stubber, model):
    iteration = images(model, 1)
    rekognition_stubber.add_client_error(
        "detect_custom_labels", "LimitExceededException", "Limit exceeded",
        expected_params=request("v2/0.jpg"))
    rekognition_stubber.add_response(
        "detect_custom_labels",
        {"CustomLabels": [{"Name": "aws-logo", "Confidence": 80.0, "Geometry": {
            "BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.0, "Top": 0.0}}}]},
        request("v2/0.jpg"))
    sleeps = []
    detections = quiet_backend(model, sleeps).detect(iteration.images.get())
    assert detections == [Detection("aws-logo", 80.0, (0.0, 0.0, 100.0, 50.0))]
    assert sleeps == [0.375]


def test_a_run_survives_limit_exceeded(rekognition_stubber, model):
    iteration = images(model, 2)
    rekognition_stubber.add_response("detect_custom_labels", {"CustomLabels": []}, request("v2/0.jpg"))
    rekognition_stubber.add_client_error(
        "detect_custom_labels", "LimitExceededException", "Limit exceeded",
        expected_params=request("v2/1.jpg"))
    rekognition_stubber.add_response("detect_custom_labels", {"CustomLabels": []}, request("v2/1.jpg"))
    sleeps = []
    run = create_proposal_run(iteration=iteration, model_version=model, concurrency=1)
    run = run_proposals(run=run, backend=quiet_backend(model, sleeps))
    assert (run.status, run.done, run.failed) == (RunStatus.SUCCEEDED, 2, 0)
    assert sleeps == [0.375]


def test_botocores_own_retries_count_towards_the_attempts(rekognition_stubber, model):
    iteration = images(model, 1)
    # Each answer says botocore already retried twice: 3 calls each, so 6 calls after two answers.
    for _ in range(2):
        rekognition_stubber.add_client_error(
            "detect_custom_labels", "ThrottlingException", "Rate exceeded",
            expected_params=request("v2/0.jpg"), response_meta={"RetryAttempts": 2})
    sleeps = []
    with pytest.raises(ImageProposalError) as info:
        quiet_backend(model, sleeps, max_attempts=6).detect(iteration.images.get())
    assert info.value.message == (
        "Rate exceeded (still throttled after 6 attempts: lower the run's concurrency or start the "
        "model with more inference units)")
    assert sleeps == [0.375]
    rekognition_stubber.assert_no_pending_responses()


def test_the_client_uses_adaptive_retries_with_three_calls_per_request(aws_env, monkeypatch):
    import boto3

    # A session of its own, so the fake credentials stay out of boto3's default session.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    aws_rekognition.client.cache_clear()
    try:
        config = aws_rekognition.client("eu-west-1").meta.config
    finally:
        aws_rekognition.client.cache_clear()
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 3}


# 12. Regions, checked once


def test_a_model_in_another_region_stops_the_run_before_any_call(rekognition_stubber, model):
    model.arn = VERSION_ARN.replace("us-east-1", "eu-west-1")
    model.save()
    iteration = images(model, 3)
    run = run_proposals(run=create_proposal_run(iteration=iteration, model_version=model, concurrency=1))
    assert (run.status, run.error) == (
        RunStatus.STOPPED,
        "model version 'logos.v1': the Rekognition ARN is in eu-west-1 but the project's region is "
        "us-east-1: Rekognition answers for a project only in its own region; set the project's region "
        "to eu-west-1")
    assert run.failed == 0


def test_a_bucket_in_another_region_stops_the_run_at_the_first_unreadable_image(rekognition_stubber, model):
    iteration = images(model, 3)
    for n in range(2):
        rekognition_stubber.add_client_error(
            "detect_custom_labels", "InvalidS3ObjectException", "Unable to get object metadata from S3. "
            "Check object key, region and/or access permissions.", expected_params=request(f"v2/{n}.jpg"))
    asked = []

    def bucket_region(bucket, region=None):
        asked.append((bucket, region))
        return "eu-central-1"

    run = create_proposal_run(iteration=iteration, model_version=model, concurrency=1)
    run = run_proposals(run=run, backend=quiet_backend(model, [], bucket_region=bucket_region))
    assert (run.status, run.error) == (
        RunStatus.STOPPED,
        "bucket photos is in eu-central-1 but the project's region is us-east-1: Rekognition reads "
        "images only from a bucket in its own region; copy the images to a bucket in us-east-1 or set "
        "the project's region to eu-central-1")
    assert asked == [("photos", "us-east-1")]
    assert run.failed == 0


def test_an_unreadable_image_in_a_bucket_of_the_project_region_fails_that_image_only(
        rekognition_stubber, model):
    iteration = images(model, 1)
    rekognition_stubber.add_client_error(
        "detect_custom_labels", "InvalidS3ObjectException", "Unable to get object metadata from S3.",
        expected_params=request("v2/0.jpg"))
    with pytest.raises(ImageProposalError) as info:
        quiet_backend(model, []).detect(iteration.images.get())
    assert info.value.code == "InvalidS3ObjectException"


def test_settings_refuse_a_project_arn_of_another_region(model):
    project = model.project
    data = {"name": project.name, "region": "eu-west-2", "image_bucket": "", "output_location": "",
            "published_images_uri": "", "rekognition_project_arn": PROJECT_ARN, "review_order": "hardest"}
    form = ProjectSettingsForm(data, instance=project)
    assert not form.is_valid()
    assert form.errors["rekognition_project_arn"] == [
        "the Rekognition ARN is in us-east-1 but the project's region is eu-west-2: Rekognition answers "
        "for a project only in its own region; set the project's region to us-east-1"]
    assert ProjectSettingsForm(dict(data, region="us-east-1"), instance=project).is_valid()


def test_s3_import_refuses_a_bucket_in_another_region(s3):
    s3.create_bucket(Bucket="far-photos", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3.put_object(Bucket="far-photos", Key="v2/a.jpg", Body=b"not read")
    iteration = make_iteration(make_project("logos"), "v2")
    with pytest.raises(ImportSourceError) as info:
        import_s3_prefix(iteration=iteration, uri="s3://far-photos/v2/")
    assert str(info.value) == (
        "cannot import s3://far-photos/v2/: bucket far-photos is in ap-south-1 but the project's region "
        "is us-east-1: Rekognition reads images only from a bucket in its own region; copy the images "
        "to a bucket in us-east-1 or set the project's region to ap-south-1")
    assert iteration.images.count() == 0


def test_settings_refuse_an_image_bucket_of_another_region(s3, model):
    s3.create_bucket(Bucket="paris-photos", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    s3.create_bucket(Bucket="home-photos")
    project = model.project
    data = {"name": project.name, "region": "us-east-1", "image_bucket": "paris-photos",
            "output_location": "", "published_images_uri": "", "rekognition_project_arn": PROJECT_ARN,
            "review_order": "hardest"}
    form = ProjectSettingsForm(data, instance=project)
    assert not form.is_valid()
    assert form.errors["image_bucket"] == [
        "bucket paris-photos is in eu-west-3 but the project's region is us-east-1: Rekognition reads "
        "images only from a bucket in its own region; copy the images to a bucket in us-east-1 or set "
        "the project's region to eu-west-3"]
    assert ProjectSettingsForm(dict(data, image_bucket="home-photos"), instance=project).is_valid()


def test_sync_models_refuses_a_project_arn_of_another_region(rekognition_stubber, model):
    from projects.proposals.rekognition import RekognitionError, sync_model_versions

    project = model.project
    project.region = "eu-west-1"
    with pytest.raises(RekognitionError) as info:
        sync_model_versions(project=project)
    assert str(info.value) == (
        "the Rekognition ARN is in us-east-1 but the project's region is eu-west-1: Rekognition answers "
        "for a project only in its own region; set the project's region to us-east-1")
