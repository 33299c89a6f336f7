"""Starting and stopping Rekognition models as AWS allows it (issue 11, point 13): inference units,
waiting for RUNNING with botocore's waiter, copied versions, and stopping after a run."""

import io

import pytest
from django.core.management import CommandError, call_command

from projects.models import Membership, ModelVersion, RunStatus
from projects.proposals.rekognition import RekognitionError, start_model, wait_for_model
from tests.factories import make_image, make_iteration, make_model_version, make_project

pytestmark = pytest.mark.django_db

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/1700000000000"
VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.v1/1700000000001"
DESCRIBE = {"ProjectArn": PROJECT_ARN, "VersionNames": ["logos.v1"]}


@pytest.fixture
def model():
    project = make_project("logos", rekognition_project_arn=PROJECT_ARN)
    return make_model_version(project, "logos.v1", kind=ModelVersion.Kind.REKOGNITION, arn=VERSION_ARN,
                              status=ModelVersion.Status.COPYING_COMPLETED)


def described(status, message=""):
    return {"ProjectVersionDescriptions": [
        {"ProjectVersionArn": VERSION_ARN, "Status": status, "StatusMessage": message}]}


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_copied_version_starts_with_min_and_max_inference_units(rekognition_stubber, model):
    rekognition_stubber.add_response(
        "start_project_version", {"Status": "STARTING"},
        {"ProjectVersionArn": VERSION_ARN, "MinInferenceUnits": 2, "MaxInferenceUnits": 5})
    start_model(model_version=model, min_units=2, max_units=5)
    model.refresh_from_db()
    assert model.status == ModelVersion.Status.STARTING


@pytest.mark.parametrize(("min_units", "max_units", "message"), [
    (0, None, "at least 1 inference unit is needed, not 0"),
    (3, 2, "the maximum inference units (2) must be at least the minimum (3)"),
])
def test_impossible_inference_units_are_refused_without_a_call(rekognition_stubber, model, min_units,
                                                               max_units, message):
    with pytest.raises(RekognitionError) as info:
        start_model(model_version=model, min_units=min_units, max_units=max_units)
    assert str(info.value) == message


def test_start_model_waits_for_running_and_shows_each_status(rekognition_stubber, model, monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    rekognition_stubber.add_response(
        "start_project_version", {"Status": "STARTING"},
        {"ProjectVersionArn": VERSION_ARN, "MinInferenceUnits": 2, "MaxInferenceUnits": 4})
    rekognition_stubber.add_response("describe_project_versions", described("STARTING"), DESCRIBE)
    rekognition_stubber.add_response("describe_project_versions", described("STARTING"), DESCRIBE)
    rekognition_stubber.add_response("describe_project_versions", described("RUNNING"), DESCRIBE)
    output = run("start_model", "logos", "--model-version", "logos.v1", "--min-units", "2",
                 "--max-units", "4", "--wait")
    rekognition_stubber.assert_no_pending_responses()
    assert output.splitlines() == [
        "logos.v1: STARTING.",
        "Billing: 2 inference unit(s), scaling up to 4, each billed by the hour while the model runs.",
        "  STARTING after 0 s ...",
        "  STARTING after 30 s ...",
        "logos.v1: RUNNING.",
        "A running model is billed by the hour: stop it with 'manage.py stop_model logos "
        "--model-version logos.v1' when the runs are done.",
    ]
    model.refresh_from_db()
    assert model.status == ModelVersion.Status.RUNNING


def test_waiting_stops_when_the_version_fails_to_start(rekognition_stubber, model):
    rekognition_stubber.add_response("describe_project_versions",
                                     described("FAILED", "Not enough capacity"), DESCRIBE)
    with pytest.raises(RekognitionError) as info:
        wait_for_model(model_version=model, sleep=lambda seconds: None)
    assert str(info.value) == "the model version failed to start: Not enough capacity"
    model.refresh_from_db()
    assert model.status == ModelVersion.Status.FAILED


def test_waiting_gives_up_after_the_waiters_attempts(rekognition_stubber, model):
    for _ in range(3):
        rekognition_stubber.add_response("describe_project_versions", described("STARTING"), DESCRIBE)
    sleeps = []
    with pytest.raises(RekognitionError) as info:
        wait_for_model(model_version=model, sleep=sleeps.append, delay=10, max_attempts=3)
    assert str(info.value) == "the model version is still STARTING after 30 s: refresh its status later"
    assert sleeps == [10, 10]


def test_an_error_answer_while_waiting_is_one_clear_line(rekognition_stubber, model):
    rekognition_stubber.add_client_error("describe_project_versions", "AccessDeniedException", "Not allowed",
                                         expected_params=DESCRIBE)
    with pytest.raises(RekognitionError) as info:
        wait_for_model(model_version=model, sleep=lambda seconds: None)
    assert str(info.value) == (
        "access denied by Rekognition (Not allowed): check the credentials' IAM policy")


def test_a_run_can_stop_the_model_when_it_ends(rekognition_stubber, model):
    iteration = make_iteration(model.project, "v2")
    make_image(iteration, source="s3://photos/v2/0.jpg", width=100, height=100)
    rekognition_stubber.add_response(
        "detect_custom_labels", {"CustomLabels": []},
        {"ProjectVersionArn": VERSION_ARN, "Image": {"S3Object": {"Bucket": "photos", "Name": "v2/0.jpg"}},
         "MinConfidence": 0})
    rekognition_stubber.add_response("stop_project_version", {"Status": "STOPPING"},
                                     {"ProjectVersionArn": VERSION_ARN})
    output = run("propose", "logos/v2", "--model-version", "logos.v1", "--stop-model")
    rekognition_stubber.assert_no_pending_responses()
    assert output.splitlines()[-1] == (
        "logos.v1: STOPPING (stopped after the run, no longer billed once stopped).")
    model.refresh_from_db()
    assert model.status == ModelVersion.Status.STOPPING
    assert model.proposal_runs.get().status == RunStatus.SUCCEEDED


def test_stopping_after_a_run_is_for_foreground_runs(model):
    make_iteration(model.project, "v2")
    with pytest.raises(CommandError) as info:
        run("propose", "logos/v2", "--model-version", "logos.v1", "--background", "--stop-model")
    assert str(info.value).startswith("--stop-model works with foreground runs only")


def test_the_project_page_starts_a_model_on_the_units_asked(client, owner, rekognition_stubber, model):
    from django.urls import reverse

    Membership.objects.create(project=model.project, user=owner, role=Membership.Role.OWNER)
    rekognition_stubber.add_response(
        "start_project_version", {"Status": "STARTING"},
        {"ProjectVersionArn": VERSION_ARN, "MinInferenceUnits": 2, "MaxInferenceUnits": 3})
    client.force_login(owner)
    url = reverse("projects:model-start", args=["logos", model.pk])
    html = client.post(url, {"min_units": "2", "max_units": "3"}, HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="error">Billed by the hour while starting</span>' in html
    html = client.post(url, {"min_units": "two"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<p class=\"error\">inference units must be whole numbers, not &#x27;two&#x27;</p>" in html
