import io
import json
from datetime import UTC, datetime

import pytest
from botocore.stub import ANY
from django.core.management import call_command
from django.core.management.base import CommandError

from projects.models import Image, ModelVersion, RunStatus, TrainingRun
from projects.training import tasks
from reviewer.models import Box
from tests.factories import make_iteration, make_project
from tests.projects.training.conftest import (
    PROJECT_ARN,
    PROJECT_PATH,
    TEST_DATASET,
    TRAIN_DATASET,
    VERSION_ARN,
    WHEN,
)

pytestmark = pytest.mark.django_db

DATASET_ARN = f"{PROJECT_PATH}/dataset/train/1600000000000"


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def complete(total):
    return {"DatasetDescription": {
        "Status": "CREATE_COMPLETE", "StatusMessageCode": "SUCCESS", "StatusMessage": "Dataset created.",
        "DatasetStats": {"LabeledEntries": total, "TotalEntries": total, "TotalLabels": 2, "ErrorEntries": 0},
    }}


def versions(status, **fields):
    return {"ProjectVersionDescriptions": [
        {"ProjectVersionArn": VERSION_ARN, "CreationTimestamp": WHEN, "Status": status, **fields}]}


def test_train_on_rekognition_queues_the_poll_that_follows_it_to_the_end(
        rekognition_stubber, s3, seed, monkeypatch):
    project, v1, v2 = seed
    s3.create_bucket(Bucket="out-bucket")
    sleeps = []
    monkeypatch.setattr(tasks, "sleep", sleeps.append)
    stub = rekognition_stubber
    stub.add_response("describe_projects", {"ProjectDescriptions": [
        {"ProjectArn": PROJECT_ARN, "CreationTimestamp": WHEN, "Status": "CREATED", "Datasets": []}]},
        {"ProjectNames": ["logos"]})
    for kind, arn in (("TRAIN", TRAIN_DATASET), ("TEST", TEST_DATASET)):
        stub.add_response("create_dataset", {"DatasetArn": arn}, {
            "ProjectArn": PROJECT_ARN, "DatasetType": kind,
            "DatasetSource": {"GroundTruthManifest": {"S3Object": {"Bucket": "out-bucket", "Name": ANY}}}})
    stub.add_response("describe_dataset", complete(3), {"DatasetArn": TRAIN_DATASET})
    stub.add_response("describe_dataset", complete(2), {"DatasetArn": TEST_DATASET})
    stub.add_response("create_project_version", {"ProjectVersionArn": VERSION_ARN}, {
        "ProjectArn": PROJECT_ARN, "VersionName": "v2",
        "OutputConfig": {"S3Bucket": "out-bucket", "S3KeyPrefix": "loupe/rekognition/v2/"}})
    request = {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]}
    stub.add_response("describe_project_versions", versions("TRAINING_IN_PROGRESS"), request)
    stub.add_response("describe_project_versions", versions("TRAINING_IN_PROGRESS"), request)
    stub.add_response("describe_project_versions", versions(
        "TRAINING_COMPLETED", StatusMessage="The model is ready to run.",
        EvaluationResult={"F1Score": 0.912}),
        request)
    output = run("train", "logos/v2", "--version-name", "v2", "--backend", "rekognition",
                 "--test-from", "logos/v1")
    stub.assert_no_pending_responses()
    # Only the two TRAINING_IN_PROGRESS answers wait: publishing, creating, starting go straight on.
    assert sleeps == [60, 60]
    training = TrainingRun.objects.get()
    model = ModelVersion.objects.get(name="v2")
    assert (training.status, training.model_version, model.status, model.f1, model.arn) == (
        RunStatus.SUCCEEDED, model, "TRAINING_COMPLETED", 0.912, VERSION_ARN)
    assert training.task_id
    assert "Model logos:v2 trained on Rekognition: TRAINING_COMPLETED, F1 0.912; thresholds none." in output


def test_train_on_rekognition_with_wait_prints_each_phase_and_fails_with_the_reason(
        rekognition_stubber, s3, seed):
    project, v1, v2 = seed
    s3.create_bucket(Bucket="out-bucket")
    stub = rekognition_stubber
    stub.add_response("describe_projects", {"ProjectDescriptions": [
        {"ProjectArn": PROJECT_ARN, "CreationTimestamp": WHEN, "Status": "CREATED", "Datasets": []}]})
    stub.add_response("create_dataset", {"DatasetArn": TRAIN_DATASET})
    stub.add_response("create_dataset", {"DatasetArn": TEST_DATASET})
    stub.add_response("describe_dataset", {"DatasetDescription": {
        "Status": "CREATE_FAILED", "StatusMessageCode": "CLIENT_ERROR", "StatusMessage": "Bad manifest.",
        "DatasetStats": {"ErrorEntries": 1}}}, {"DatasetArn": TRAIN_DATASET})
    stub.add_response("list_dataset_entries", {"DatasetEntries": [json.dumps(
        {"source-ref": "s3://my-bucket/v2/d.jpg", "errors": [{"code": "ERROR_INVALID_IMAGE"}]})]},
        {"DatasetArn": TRAIN_DATASET, "HasErrors": True})
    stub.add_response("describe_dataset", complete(2), {"DatasetArn": TEST_DATASET})
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("train", "logos/v2", "--version-name", "v2", "--backend", "rekognition",
                     "--test-from", "v1", "--wait", "--poll-seconds", "0", stdout=out)
    stub.assert_no_pending_responses()
    printed = out.getvalue()
    assert printed.splitlines()[0] == (
        f"Training run #{TrainingRun.objects.get().pk}: Rekognition model v2 from v2, tested on v1 "
        "(training time is billed by AWS).")
    assert "TRAIN d.jpg: ERROR_INVALID_IMAGE" in printed
    assert str(failure.value).endswith(
        "failed: Rekognition could not create the TRAIN dataset (TRAIN: Bad manifest. (CLIENT_ERROR)); "
        "1 line(s) with errors, listed per image")


def test_train_local_delegates_to_the_local_trainer(seed, monkeypatch):
    from projects.local_model import learning

    project, v1, v2 = seed
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        return ModelVersion.objects.create(project=project, name="v2", kind=ModelVersion.Kind.LOCAL,
                                           status="READY", f1=0.75, training_images=3)

    monkeypatch.setattr(learning, "train_local_model", fake_train)
    output = run("train", "logos/v2", "--version-name", "v2", "--backend", "local", "--test-from", "logos/v1")
    assert [(c["project"], c["iterations"], c["name"], c["held_out"]) for c in calls] == [
        (project, [v2], "v2", v1)]
    assert "Local model logos:v2 is ready: 3 training images, F1 0.750 on v1." in output


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "local", "--test-fraction", "0.2"], "measures on a test iteration it never learns from"),
    (["--backend", "rekognition"], "Rekognition needs a test set"),
    (["--backend", "rekognition", "--test-from", "logos/v9"], "project 'logos' has no iteration 'v9'"),
])
def test_train_refuses_with_one_line(seed, args, message):
    with pytest.raises(CommandError, match=message):
        run("train", "logos/v2", "--version-name", "v2", *args)
    assert TrainingRun.objects.count() == 0


def entry(source, *boxes, date="2021-06-22T10:11:18.006Z"):
    class_map = {"0": "aws-logo", "1": "smile-logo"}
    ids = {name: key for key, name in class_map.items()}
    return json.dumps({
        "source-ref": source,
        "bounding-box": {
            "image_size": [{"width": 1024, "height": 768, "depth": 3}],
            "annotations": [
                {"class_id": int(ids[name]), "left": left, "top": top, "width": width, "height": height}
                for name, (left, top, width, height) in boxes],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in boxes], "class-map": class_map,
            "type": "groundtruth/object-detection", "human-annotated": "yes", "creation-date": date,
            "job-name": "labeling-job/logos",
        },
    })


def test_import_rekognition_dataset_reads_every_page_into_reviewed_truth(rekognition_stubber):
    project = make_project("logos", rekognition_project_arn=PROJECT_ARN)
    v1 = make_iteration(project, "v1")
    rekognition_stubber.add_response("list_dataset_entries", {
        "DatasetEntries": [entry("s3://my-bucket/v1/a.jpg", ("aws-logo", (10, 20, 100, 50))),
                           entry("s3://my-bucket/v1/b.jpg", ("smile-logo", (30, 40, 60, 60)),
                                 ("aws-logo", (500, 400, 90, 90)))],
        "NextToken": "page-2"}, {"DatasetArn": DATASET_ARN})
    rekognition_stubber.add_response("list_dataset_entries", {
        "DatasetEntries": [entry("s3://my-bucket/v1/c.jpg")]},
        {"DatasetArn": DATASET_ARN, "NextToken": "page-2"})
    output = run("import_rekognition_dataset", "logos/v1", "--dataset-arn", DATASET_ARN)
    rekognition_stubber.assert_no_pending_responses()
    assert "3 of 3 entries imported (3 new images, 3 boxes, 0 proposals), 0 rejected, 0 warnings." in output
    images = list(v1.images.order_by("source"))
    assert [(i.source, i.status, i.no_objects, i.width, i.height) for i in images] == [
        ("s3://my-bucket/v1/a.jpg", Image.Status.REVIEWED, False, 1024, 768),
        ("s3://my-bucket/v1/b.jpg", Image.Status.REVIEWED, False, 1024, 768),
        ("s3://my-bucket/v1/c.jpg", Image.Status.REVIEWED, True, 1024, 768),
    ]
    assert images[0].reviewed_at == datetime(2021, 6, 22, 10, 11, 18, 6000, tzinfo=UTC)
    boxes = Box.objects.order_by("image__source", "left").values_list(
        "image__source", "label__name", "left", "top", "width", "height", "origin")
    assert list(boxes) == [
        ("s3://my-bucket/v1/a.jpg", "aws-logo", 10, 20, 100, 50, Box.Origin.IMPORTED),
        ("s3://my-bucket/v1/b.jpg", "smile-logo", 30, 40, 60, 60, Box.Origin.IMPORTED),
        ("s3://my-bucket/v1/b.jpg", "aws-logo", 500, 400, 90, 90, Box.Origin.IMPORTED),
    ]
    # Again: nothing changes.
    rekognition_stubber.add_response("list_dataset_entries", {"DatasetEntries": [
        entry("s3://my-bucket/v1/a.jpg", ("aws-logo", (10, 20, 100, 50)))]}, {"DatasetArn": DATASET_ARN})
    run("import_rekognition_dataset", "logos/v1", "--dataset-arn", DATASET_ARN)
    assert Box.objects.count() == 3


def test_import_rekognition_dataset_reports_bad_entries_and_rekognition_errors(rekognition_stubber):
    project = make_project("logos", labels=("aws-logo",))
    make_iteration(project, "v1")
    rekognition_stubber.add_response("list_dataset_entries", {"DatasetEntries": [
        entry("s3://my-bucket/v1/b.jpg", ("smile-logo", (30, 40, 60, 60)))]}, {"DatasetArn": DATASET_ARN})
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 entries were not imported"):
        call_command("import_rekognition_dataset", "logos/v1", "--dataset-arn", DATASET_ARN, stdout=out)
    assert "entry 1: error: label(s) smile-logo not in project 'logos'" in out.getvalue()
    rekognition_stubber.add_client_error("list_dataset_entries", "AccessDeniedException", "not allowed")
    with pytest.raises(CommandError, match=r"access denied by Rekognition \(not allowed\)"):
        run("import_rekognition_dataset", "logos/v1", "--dataset-arn", DATASET_ARN)
    with pytest.raises(CommandError, match="is not a Rekognition dataset ARN"):
        run("import_rekognition_dataset", "logos/v1", "--dataset-arn", PROJECT_ARN)


@pytest.mark.parametrize(("date", "expected"), [
    ("2021-06-22T10:11:18.006Z", "2021-06-22T10:11:18.006000"),
    ("2018-10-18T22:18:13.527256", "2018-10-18T22:18:13.527256"),
    ("2021-06-22T12:11:18+02:00", "2021-06-22T10:11:18.000000"),
    ("2021-06-22T12:11:18+0200", "2021-06-22T10:11:18.000000"),
    ("2021-06-22 10:11:18", "2021-06-22T10:11:18.000000"),
    ("yesterday", "yesterday"),
])
def test_entry_dates_are_rewritten_in_ground_truths_utc_style(date, expected):
    from projects.training.dataset_import import gt_dates

    line = json.loads(gt_dates(entry("s3://b/a.jpg", date=date)))
    assert line["bounding-box-metadata"]["creation-date"] == expected
    assert gt_dates("not json") == "not json"
