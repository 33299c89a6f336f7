import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from projects.detections import Detection
from projects.models import ModelVersion, Proposal, ProposalRun, RunStatus
from tests.factories import make_image, make_iteration, make_model_version, make_project

pytestmark = pytest.mark.django_db

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/1700000000000"
VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.v1/1700000000001"


@pytest.fixture
def stubber(rekognition_stubber):
    return rekognition_stubber


@pytest.fixture
def iteration():
    project = make_project("logos", rekognition_project_arn=PROJECT_ARN)
    make_model_version(project, "logos.v1", kind=ModelVersion.Kind.REKOGNITION, arn=VERSION_ARN)
    iteration = make_iteration(project, "v2")
    for n in range(2):
        make_image(iteration, source=f"s3://photos/v2/{n}.jpg", width=100, height=100, position=n)
    return iteration


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def detect_request(n):
    return {"ProjectVersionArn": VERSION_ARN,
            "Image": {"S3Object": {"Bucket": "photos", "Name": f"v2/{n}.jpg"}}, "MinConfidence": 0}


def test_propose_runs_in_the_foreground_and_reports(stubber, iteration):
    stubber.add_response("detect_custom_labels", {"CustomLabels": [
        {"Name": "aws-logo", "Confidence": 88.0,
         "Geometry": {"BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.0, "Top": 0.0}}}]},
        detect_request(0))
    stubber.add_client_error("detect_custom_labels", "InvalidImageFormatException",
                             "Request has invalid image format", expected_params=detect_request(1))
    output = run("propose", "logos/v2", "--model-version", "logos.v1", "--concurrency", "1")
    lines = output.splitlines()
    assert lines[0] == "failed 1.jpg: InvalidImageFormatException: Request has invalid image format"
    assert re.fullmatch(
        r"logos/v2: 1 of 2 images done, 1 failed, 1 proposals from logos\.v1 \(\d+\.\d s\)\.", lines[1]
    )
    assert lines[2:] == [
        "logos.v1 keeps running and is billed per inference unit hour: stop it with 'manage.py "
        "stop_model logos --model-version logos.v1' (or pass --stop-model next time)."]
    assert Proposal.objects.count() == 1
    assert ProposalRun.objects.get().status == RunStatus.SUCCEEDED


def test_propose_stops_with_one_line_when_the_model_is_not_running(stubber, iteration):
    for n in range(2):
        stubber.add_client_error("detect_custom_labels", "ResourceNotReadyException", "not running",
                                 expected_params=detect_request(n))
    with pytest.raises(CommandError) as info:
        run("propose", "logos/v2", "--model-version", "logos.v1", "--concurrency", "1")
    assert str(info.value) == (
        "model is not running: start it (project page, or 'manage.py start_model logos --model-version "
        "logos.v1'), wait until it is RUNNING, then run again"
    )
    assert ProposalRun.objects.get().status == RunStatus.STOPPED


def test_propose_in_the_background_queues_a_task(stubber, iteration):
    for n in range(2):
        stubber.add_response("detect_custom_labels", {"CustomLabels": []}, detect_request(n))
    # One call at a time: a Stubber answers in order, and two threads could swap the two images.
    output = run("propose", "logos/v2", "--model-version", "logos.v1", "--background", "--concurrency", "1")
    run_row = ProposalRun.objects.get()
    assert output == f"Queued proposal run #{run_row.pk} of logos.v1 on logos/v2.\n"
    # Tests use the immediate task backend, so the run has already happened.
    assert (run_row.status, run_row.done) == (RunStatus.SUCCEEDED, 2)


@pytest.mark.parametrize(("args", "message"), [
    (["logos/v9", "--model-version", "logos.v1"],
     "project 'logos' has no iteration 'v9': create it with 'manage.py create_iteration logos/v9'"),
    (["logos/v2", "--model-version", "nope"],
     "project 'logos' has no model version 'nope' (it has: logos.v1); Rekognition versions appear "
     "after 'manage.py sync_models logos'"),
    (["logos/v2", "--model-version", "logos.v1", "--concurrency", "0"],
     "concurrency must be between 1 and 32"),
    (["logos", "--model-version", "logos.v1"], "'logos' is not PROJECT/ITERATION (e.g. logos/v2)"),
])
def test_propose_errors(iteration, args, message):
    with pytest.raises(CommandError) as info:
        run("propose", *args)
    assert str(info.value) == message
    assert not ProposalRun.objects.exists()


def test_propose_refuses_imported_predictions(iteration):
    make_model_version(iteration.project, "batch", kind=ModelVersion.Kind.IMPORTED)
    with pytest.raises(CommandError, match="'batch' holds imported predictions and cannot run"):
        run("propose", "logos/v2", "--model-version", "batch")


def test_sync_models(stubber, iteration):
    stubber.add_response("describe_project_versions", {"ProjectVersionDescriptions": [
        {"ProjectVersionArn": VERSION_ARN, "Status": "RUNNING", "EvaluationResult": {"F1Score": 0.8}},
        {"ProjectVersionArn": VERSION_ARN.replace("logos.v1", "logos.v2"), "Status": "TRAINING_IN_PROGRESS"},
    ]}, {"ProjectArn": PROJECT_ARN})
    assert run("sync_models", "logos") == "logos: 1 created, 1 updated, 0 with problems.\n"
    assert list(ModelVersion.objects.order_by("name").values_list("name", "status", "f1")) == [
        ("logos.v1", "RUNNING", 0.8), ("logos.v2", "TRAINING_IN_PROGRESS", None)
    ]


def test_sync_models_errors(stubber, iteration):
    stubber.add_client_error("describe_project_versions", "AccessDeniedException", "User is not authorized")
    with pytest.raises(CommandError) as info:
        run("sync_models", "logos")
    assert str(info.value) == (
        "access denied by Rekognition (User is not authorized): check the credentials' IAM policy"
    )
    with pytest.raises(CommandError) as info:
        run("sync_models", "nope")
    assert str(info.value) == "no project 'nope': create it with 'manage.py create_project'"


def test_start_and_stop_model(stubber, iteration):
    stubber.add_response("start_project_version", {"Status": "STARTING"},
                         {"ProjectVersionArn": VERSION_ARN, "MinInferenceUnits": 1})
    stubber.add_response("stop_project_version", {"Status": "STOPPING"}, {"ProjectVersionArn": VERSION_ARN})
    assert run("start_model", "logos", "--model-version", "logos.v1") == (
        "logos.v1: STARTING.\nBilling: 1 inference unit(s), each billed by the hour while the model runs.\n"
        "Note: AWS recommends at least 2 inference units for production traffic (--min-units).\n"
        "A running model is billed by the hour: stop it with "
        "'manage.py stop_model logos --model-version logos.v1' when the runs are done.\n"
    )
    assert run("stop_model", "logos", "--model-version", "logos.v1") == "logos.v1: STOPPING.\n"


def test_start_model_error(stubber, iteration):
    stubber.add_client_error("start_project_version", "LimitExceededException", "Too many running models")
    with pytest.raises(CommandError) as info:
        run("start_model", "logos", "--model-version", "logos.v1")
    assert str(info.value) == "Rekognition error LimitExceededException: Too many running models"


def _lines():
    good = {"source-ref": "s3://photos/v2/0.jpg",
            "CustomLabels": [{"Name": "aws-logo", "Confidence": 70.0}]}
    unknown = {**good, "source-ref": "s3://photos/v2/x.jpg"}
    return f"{json.dumps(good)}\noops\n{json.dumps(unknown)}\n"


def test_import_predictions_from_a_file(iteration, tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(_lines())
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("import_predictions", "logos/v2", str(path), "--model-version", "batch-1", stdout=out)
    # Non-zero like import_manifest whenever a line was rejected; the good line is imported.
    assert str(info.value) == (
        "2 line(s) not imported (see above): 1 images imported with 1 proposals from 3 lines, "
        "2 lines not imported; fix those lines and import them again")
    assert out.getvalue().splitlines() == [
        "line 2: not JSON (Expecting value: line 1 column 1 (char 0))",
        "line 3: no image s3://photos/v2/x.jpg in logos/v2",
        "logos/v2 (batch-1): 1 images imported with 1 proposals from 3 lines, 2 lines not imported.",
    ]
    assert ModelVersion.objects.get(name="batch-1").kind == ModelVersion.Kind.IMPORTED


def test_import_predictions_from_s3(iteration, s3):
    s3.create_bucket(Bucket="preds")
    s3.put_object(Bucket="preds", Key="run.jsonl", Body=_lines().encode())
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_predictions", "logos/v2", "s3://preds/run.jsonl", "--model-version", "batch-1",
                     stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "logos/v2 (batch-1): 1 images imported with 1 proposals from 3 lines, 2 lines not imported."
    )


def test_import_predictions_errors(iteration, tmp_path):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(CommandError) as info:
        run("import_predictions", "logos/v2", str(missing), "--model-version", "batch-1")
    assert str(info.value) == f"cannot read {missing}: No such file or directory"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("oops\n")
    with pytest.raises(CommandError) as info:
        run("import_predictions", "logos/v2", str(bad), "--model-version", "batch-1")
    assert str(info.value) == (
        "nothing imported: 0 images imported with 0 proposals from 1 lines, 1 lines not imported"
    )
    assert not ModelVersion.objects.filter(name="batch-1").exists()


def test_an_interrupted_propose_resumes_without_duplicates(iteration, monkeypatch):
    from projects.proposals import runs as proposals

    class Interrupting:
        def __init__(self, interrupt_on):
            self.interrupt_on = interrupt_on

        def detect(self, image):
            if image.name == self.interrupt_on:
                raise KeyboardInterrupt
            return [Detection("aws-logo", 90.0, (1.0, 1.0, 5.0, 5.0))]

    monkeypatch.setattr(proposals, "backend_for", lambda model_version: Interrupting("1.jpg"))
    with pytest.raises(CommandError) as info:
        run("propose", "logos/v2", "--model-version", "logos.v1", "--concurrency", "1")
    assert str(info.value) == "interrupted: run the same command again to resume"
    first = ProposalRun.objects.get()
    assert (first.status, first.error) == (RunStatus.STOPPED, "interrupted")

    monkeypatch.setattr(proposals, "backend_for", lambda model_version: Interrupting(None))
    run("propose", "logos/v2", "--model-version", "logos.v1", "--concurrency", "1")
    assert Proposal.objects.count() == 2
    assert list(ProposalRun.objects.order_by("id").values_list("status", "done")) == [
        (RunStatus.STOPPED, 0), (RunStatus.SUCCEEDED, 2)
    ]
