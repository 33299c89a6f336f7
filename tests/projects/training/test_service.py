import json

import pytest

from projects.manifests import publish as manifest_publish
from projects.models import Export, ModelVersion, RunStatus, TrainingRun
from projects.training.service import (
    TrainingError,
    TrainingRequest,
    advance,
    begin,
    create_rekognition_run,
    line_problems,
)
from tests.projects.training.conftest import (
    PROJECT_ARN,
    TEST_DATASET,
    TRAIN_DATASET,
    VERSION_ARN,
    WHEN,
)

pytestmark = pytest.mark.django_db

EVALUATION_KEY = "loupe/rekognition/v2/EvaluationResultSummary-logos-v2.json"
TRAIN_VALIDATION_KEY = "loupe/rekognition/v2/training_manifest_with_validation.json"
TEST_VALIDATION_KEY = "loupe/rekognition/v2/testing_manifest_with_validation.json"
SUMMARY_KEY = "loupe/rekognition/v2/manifest_summary.json"


@pytest.fixture
def stamped(monkeypatch):
    monkeypatch.setattr(manifest_publish.timezone, "now", lambda: WHEN)


def seed_request(seed, **options):
    project, v1, v2 = seed
    return TrainingRequest(iteration=v2, version_name="v2", backend="rekognition", test_from=v1, **options)


def project_description(datasets=()):
    return {"ProjectDescriptions": [
        {"ProjectArn": PROJECT_ARN, "CreationTimestamp": WHEN, "Status": "CREATED",
         "Datasets": list(datasets)}
    ]}


def dataset_description(status, *, code="SUCCESS", message="", total=3, errors=0):
    return {"DatasetDescription": {
        "CreationTimestamp": WHEN, "LastUpdatedTimestamp": WHEN, "Status": status,
        "StatusMessage": message, "StatusMessageCode": code,
        "DatasetStats": {"LabeledEntries": total - errors, "TotalEntries": total, "TotalLabels": 2,
                         "ErrorEntries": errors},
    }}


def version_description(status, **fields):
    return {"ProjectVersionDescriptions": [
        {"ProjectVersionArn": VERSION_ARN, "CreationTimestamp": WHEN, "Status": status, **fields}
    ]}


LOGOS = {"ProjectNames": ["logos"]}


def validation(key):
    return {"Validation": {"Assets": [{"GroundTruthManifest": s3_object(key)}]}}


def s3_object(key):
    return {"S3Object": {"Bucket": "out-bucket", "Name": key}}


def published_keys(run):
    exports = Export.objects.filter(pk__in=run.details["exports"]).order_by("pk")
    return [export.uri[len("s3://out-bucket/"):] for export in exports]


def through_datasets(stubber, s3, seed, owner):
    """Publish, create both datasets and see them complete; returns the run at CreateProjectVersion."""
    s3.create_bucket(Bucket="out-bucket")
    run = begin(create_rekognition_run(seed_request(seed), user=owner))
    stubber.add_response("describe_projects", project_description(), {"ProjectNames": ["logos"]})
    assert advance(run) is False
    train_key, test_key = published_keys(run)
    for kind, key, arn in (("TRAIN", train_key, TRAIN_DATASET), ("TEST", test_key, TEST_DATASET)):
        stubber.add_response(
            "create_dataset", {"DatasetArn": arn},
            {"ProjectArn": PROJECT_ARN, "DatasetType": kind,
             "DatasetSource": {"GroundTruthManifest": {"S3Object": {"Bucket": "out-bucket", "Name": key}}}},
        )
    assert advance(run) is False
    stubber.add_response("describe_dataset", dataset_description("CREATE_IN_PROGRESS"),
                         {"DatasetArn": TRAIN_DATASET})
    stubber.add_response("describe_dataset", dataset_description("CREATE_COMPLETE", total=2),
                         {"DatasetArn": TEST_DATASET})
    assert advance(run) is False
    stubber.add_response("describe_dataset", dataset_description("CREATE_COMPLETE"),
                         {"DatasetArn": TRAIN_DATASET})
    stubber.add_response(
        "create_project_version", {"ProjectVersionArn": VERSION_ARN},
        {"ProjectArn": PROJECT_ARN, "VersionName": "v2",
         "OutputConfig": {"S3Bucket": "out-bucket", "S3KeyPrefix": "loupe/rekognition/v2/"}},
    )
    assert advance(run) is False
    return run


def test_seed_trains_v2_on_the_v2_manifest_tested_on_v1_through_to_completed(
        rekognition_stubber, s3, seed, owner, stamped):
    project, v1, v2 = seed
    run = through_datasets(rekognition_stubber, s3, seed, owner)
    train_key, test_key = published_keys(run)
    assert train_key.startswith("loupe/logos-v2-20261128T101503Z-export")
    assert test_key.startswith("loupe/logos-v1-20261128T101503Z-export")
    train_lines = s3.get_object(Bucket="out-bucket", Key=train_key)["Body"].read().decode().splitlines()
    test_lines = s3.get_object(Bucket="out-bucket", Key=test_key)["Body"].read().decode().splitlines()
    assert [json.loads(line)["source-ref"] for line in train_lines] == [
        "s3://my-bucket/v2/c.jpg", "s3://my-bucket/v2/d.jpg", "s3://my-bucket/v2/e.jpg"]
    assert [json.loads(line)["source-ref"] for line in test_lines] == [
        "s3://my-bucket/v1/a.jpg", "s3://my-bucket/v1/b.jpg"]
    model = ModelVersion.objects.get(name="v2")
    assert (model.kind, model.arn, model.status, model.trained_from) == (
        ModelVersion.Kind.REKOGNITION, VERSION_ARN, "TRAINING_IN_PROGRESS", v2)

    rekognition_stubber.add_response(
        "describe_project_versions", version_description("TRAINING_IN_PROGRESS", StatusMessage="Training."),
        {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]})
    assert advance(run) is False
    assert RunStatus.RUNNING == TrainingRun.objects.get().status

    s3.put_object(Bucket="out-bucket", Key=EVALUATION_KEY, Body=json.dumps({
        "Version": 1,
        "AggregatedEvaluationResults": {"Metrics": {"Precision": 0.9, "Recall": 0.8, "F1Score": 0.847}},
        "EvaluationDetails": {"NumberOfTrainingImages": 3, "NumberOfTestingImages": 2},
        "LabelEvaluationResults": [
            {"Label": "aws-logo", "NumberOfTestingImages": 1,
             "Metrics": {"Threshold": 0.412, "Precision": 1.0, "Recall": 0.75, "F1Score": 0.857}},
            {"Label": "smile-logo", "NumberOfTestingImages": 1,
             "Metrics": {"Threshold": 0.6, "Precision": 0.8, "Recall": 0.85, "F1Score": 0.824}},
        ],
    }))
    bad_line = json.loads(train_lines[1])
    bad_line["bounding-box"]["annotations"][1]["errors"] = [
        {"code": "ERROR_BOUNDING_BOX_TOO_SMALL", "message": "The bounding box is too small."}]
    s3.put_object(Bucket="out-bucket", Key=TRAIN_VALIDATION_KEY,
                  Body=f"{train_lines[0]}\n{json.dumps(bad_line)}\n{train_lines[2]}\n")
    s3.put_object(Bucket="out-bucket", Key=TEST_VALIDATION_KEY, Body="\n".join(test_lines) + "\n")
    s3.put_object(Bucket="out-bucket", Key=SUMMARY_KEY, Body=json.dumps(
        {"version": 1, "statistics": {"total_json_lines": 3, "valid_json_lines": 3}, "errors": []}))
    rekognition_stubber.add_response(
        "describe_project_versions",
        version_description(
            "TRAINING_COMPLETED", StatusMessage="The model is ready to run.",
            BillableTrainingTimeInSeconds=3720,
            EvaluationResult={"F1Score": 0.847, "Summary": s3_object(EVALUATION_KEY)},
            TrainingDataResult=validation(TRAIN_VALIDATION_KEY),
            TestingDataResult=validation(TEST_VALIDATION_KEY),
            ManifestSummary=s3_object(SUMMARY_KEY),
        ),
        {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]})
    assert advance(run) is True
    rekognition_stubber.assert_no_pending_responses()

    model.refresh_from_db()
    assert (model.status, model.status_message, model.f1, model.training_images) == (
        "TRAINING_COMPLETED", "The model is ready to run.", 0.847, 3)
    labels = dict(model.project.labels.values_list("name", "pk"))
    assert model.thresholds_by_label() == {labels["aws-logo"]: 41.2, labels["smile-logo"]: 60.0}
    assert model.evaluation == {
        "precision": 0.9, "recall": 0.8, "f1": 0.847,
        "per_label": {
            "aws-logo": {"precision": 1.0, "recall": 0.75, "f1": 0.857, "threshold": 0.412},
            "smile-logo": {"precision": 0.8, "recall": 0.85, "f1": 0.824, "threshold": 0.6},
        },
    }
    run = TrainingRun.objects.get()
    assert (run.status, run.error, run.model_version, run.kind) == (
        RunStatus.SUCCEEDED, "", model, ModelVersion.Kind.REKOGNITION)
    assert run.message == "Rekognition model v2 from v2, tested on v1: F1 0.847"
    d_image = v2.images.get(source="s3://my-bucket/v2/d.jpg")
    assert run.details["problems"] == [{
        "set": "TRAIN", "source_ref": "s3://my-bucket/v2/d.jpg",
        "errors": ["box 2: ERROR_BOUNDING_BOX_TOO_SMALL: The bounding box is too small."], "warnings": [],
        "image_id": d_image.pk, "image": "d.jpg",
    }]
    assert run.details["billable_seconds"] == 3720
    assert run.details["manifest_errors"] == []
    assert run.details["phase"] == "done"


def test_training_failed_is_recorded_with_rekognitions_reason_and_line_verdicts(
        rekognition_stubber, s3, seed, owner, stamped):
    project, v1, v2 = seed
    run = through_datasets(rekognition_stubber, s3, seed, owner)
    s3.put_object(Bucket="out-bucket", Key=TEST_VALIDATION_KEY, Body=json.dumps({
        "source-ref": "s3://my-bucket/v1/b.jpg",
        "errors": [{"code": "ERROR_INVALID_IMAGE", "message": "The image is not a valid PNG or JPEG."}],
    }) + "\n")
    s3.put_object(Bucket="out-bucket", Key=SUMMARY_KEY, Body=json.dumps({
        "version": 1, "statistics": {"total_json_lines": 2, "invalid_json_lines": 1},
        "errors": [{"code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
                    "message": "The manifest file contains too many invalid rows."}],
    }))
    rekognition_stubber.add_response(
        "describe_project_versions", version_description("TRAINING_IN_PROGRESS"),
        {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]})
    rekognition_stubber.add_response(
        "describe_project_versions",
        version_description(
            "TRAINING_FAILED", StatusMessage="The manifest file contains too many invalid data objects.",
            TestingDataResult=validation(TEST_VALIDATION_KEY),
            ManifestSummary=s3_object(SUMMARY_KEY),
        ),
        {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]})
    assert advance(run) is False
    assert advance(run) is True
    rekognition_stubber.assert_no_pending_responses()
    run = TrainingRun.objects.get()
    model = ModelVersion.objects.get(name="v2")
    assert (model.status, model.status_message, model.f1, model.thresholds) == (
        "TRAINING_FAILED", "The manifest file contains too many invalid data objects.", None, {})
    assert (run.status, run.error) == (
        RunStatus.FAILED,
        "Rekognition training ended TRAINING_FAILED: "
        "The manifest file contains too many invalid data objects.")
    b_image = v1.images.get(source="s3://my-bucket/v1/b.jpg")
    assert run.details["problems"] == [{
        "set": "TEST", "source_ref": "s3://my-bucket/v1/b.jpg",
        "errors": ["ERROR_INVALID_IMAGE: The image is not a valid PNG or JPEG."], "warnings": [],
        "image_id": b_image.pk, "image": "b.jpg",
    }]
    assert run.details["manifest_errors"] == [
        "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST: The manifest file contains too many invalid rows."]
    # Rekognition knows the version: its name stays taken.
    with pytest.raises(TrainingError, match="already has a model version named 'v2'"):
        create_rekognition_run(seed_request(seed))


def test_dataset_create_failed_lists_the_line_errors_per_image(rekognition_stubber, s3, seed, owner, stamped):
    project, v1, v2 = seed
    s3.create_bucket(Bucket="out-bucket")
    run = begin(create_rekognition_run(seed_request(seed), user=owner))
    rekognition_stubber.add_response("describe_projects", project_description(), {"ProjectNames": ["logos"]})
    advance(run)
    train_key, test_key = published_keys(run)
    rekognition_stubber.add_response("create_dataset", {"DatasetArn": TRAIN_DATASET})
    rekognition_stubber.add_response("create_dataset", {"DatasetArn": TEST_DATASET})
    advance(run)
    rekognition_stubber.add_response(
        "describe_dataset",
        dataset_description("CREATE_FAILED", code="CLIENT_ERROR", errors=2,
                            message="The manifest file contains images with errors."),
        {"DatasetArn": TRAIN_DATASET})
    entry_c = {"source-ref": "s3://my-bucket/v2/c.jpg",
               "errors": [{"code": "ERROR_INVALID_IMAGE_DIMENSION",
                           "message": "Image dimensions are too small."}]}
    entry_e = {"source-ref": "s3://my-bucket/v2/e.jpg",
               "bounding-box": {"annotations": [
                   {"class_id": 1, "left": 100, "top": 100, "width": 64, "height": 64,
                    "errors": [{"code": "ERROR_INVALID_BOUNDING_BOX"}]}]}}
    rekognition_stubber.add_response(
        "list_dataset_entries", {"DatasetEntries": [json.dumps(entry_c)], "NextToken": "page-2"},
        {"DatasetArn": TRAIN_DATASET, "HasErrors": True})
    rekognition_stubber.add_response(
        "list_dataset_entries", {"DatasetEntries": [json.dumps(entry_e)]},
        {"DatasetArn": TRAIN_DATASET, "HasErrors": True, "NextToken": "page-2"})
    rekognition_stubber.add_response("describe_dataset", dataset_description("CREATE_COMPLETE", total=2),
                                     {"DatasetArn": TEST_DATASET})
    assert advance(run) is True
    rekognition_stubber.assert_no_pending_responses()
    run = TrainingRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.error == (
        "Rekognition could not create the TRAIN dataset (TRAIN: The manifest file contains images with "
        "errors. (CLIENT_ERROR)); 2 line(s) with errors, listed per image")
    c_image, e_image = (v2.images.get(name=name) for name in ("c.jpg", "e.jpg"))
    assert run.details["problems"] == [
        {"set": "TRAIN", "source_ref": "s3://my-bucket/v2/c.jpg",
         "errors": ["ERROR_INVALID_IMAGE_DIMENSION: Image dimensions are too small."], "warnings": [],
         "image_id": c_image.pk, "image": "c.jpg"},
        {"set": "TRAIN", "source_ref": "s3://my-bucket/v2/e.jpg",
         "errors": ["box 1: ERROR_INVALID_BOUNDING_BOX"], "warnings": [],
         "image_id": e_image.pk, "image": "e.jpg"},
    ]
    assert run.details["datasets"]["TRAIN"]["stats"]["ErrorEntries"] == 2
    model = ModelVersion.objects.get(name="v2")
    assert (model.status, model.arn) == (ModelVersion.Status.FAILED, "")
    # Rekognition never trained it: the name is free for the next attempt.
    assert create_rekognition_run(seed_request(seed)).model_version.status == ModelVersion.Status.TRAINING


def test_existing_datasets_are_refused_before_publishing_unless_replaced(
        rekognition_stubber, s3, seed, owner, stamped):
    s3.create_bucket(Bucket="out-bucket")
    old = [{"CreationTimestamp": WHEN, "DatasetType": "TRAIN", "DatasetArn": f"{TRAIN_DATASET}-old",
            "Status": "CREATE_COMPLETE"},
           {"CreationTimestamp": WHEN, "DatasetType": "TEST", "DatasetArn": f"{TEST_DATASET}-old",
            "Status": "CREATE_COMPLETE"}]
    run = begin(create_rekognition_run(seed_request(seed), user=owner))
    rekognition_stubber.add_response("describe_projects", project_description(old), LOGOS)
    assert advance(run) is True
    assert run.error.startswith("the Rekognition project already has TEST and TRAIN datasets")
    assert Export.objects.count() == 0

    run = begin(create_rekognition_run(seed_request(seed, replace_datasets=True), user=owner))
    rekognition_stubber.add_response("describe_projects", project_description(old), LOGOS)
    rekognition_stubber.add_response("delete_dataset", {}, {"DatasetArn": f"{TRAIN_DATASET}-old"})
    rekognition_stubber.add_response("delete_dataset", {}, {"DatasetArn": f"{TEST_DATASET}-old"})
    assert advance(run) is False
    assert run.details["phase"] == "replacing"
    rekognition_stubber.add_client_error("describe_dataset", "ResourceNotFoundException",
                                         expected_params={"DatasetArn": f"{TRAIN_DATASET}-old"})
    rekognition_stubber.add_response("describe_dataset",
                                     {"DatasetDescription": {"Status": "DELETE_IN_PROGRESS"}},
                                     {"DatasetArn": f"{TEST_DATASET}-old"})
    assert advance(run) is False
    assert run.details["replacing"] == [f"{TEST_DATASET}-old"]
    rekognition_stubber.add_client_error("describe_dataset", "ResourceNotFoundException",
                                         expected_params={"DatasetArn": f"{TEST_DATASET}-old"})
    assert advance(run) is False
    assert run.details["phase"] == "create"
    rekognition_stubber.assert_no_pending_responses()


def test_split_of_one_iteration_publishes_train_and_test_halves(
        rekognition_stubber, s3, seed, owner, stamped):
    project, v1, v2 = seed
    s3.create_bucket(Bucket="out-bucket")
    request = TrainingRequest(iteration=v2, version_name="v2", test_fraction=0.4)
    run = begin(create_rekognition_run(request, user=owner))
    rekognition_stubber.add_response("describe_projects", project_description(), {"ProjectNames": ["logos"]})
    advance(run)
    export = Export.objects.get()
    files = export.report["files"]
    assert [file["role"] for file in files] == ["train", "test"]
    assert run.details["datasets"] == {
        "TRAIN": {"manifest": files[0]["uri"]}, "TEST": {"manifest": files[1]["uri"]}}
    assert run.message == "Rekognition model v2 from v2, tested on 40% of it"


@pytest.mark.parametrize(("options", "message"), [
    ({"test_from": None}, "Rekognition needs a test set"),
    ({"version_name": "v 2"}, "cannot name a Rekognition version"),
    ({"test_fraction": 0.2}, "name a test iteration or a test fraction, not both"),
    ({"backend": "sagemaker"}, "unknown backend 'sagemaker'"),
])
def test_refused_requests_say_why(seed, options, message):
    project, v1, v2 = seed
    fields = {"iteration": v2, "version_name": "v2", "test_from": v1, **options}
    with pytest.raises(TrainingError, match=message):
        create_rekognition_run(TrainingRequest(**fields))
    assert TrainingRun.objects.count() == 0


def test_the_same_start_sent_twice_at_once_is_refused_with_a_message(seed, monkeypatch):
    project, v1, v2 = seed
    first = create_rekognition_run(seed_request(seed))
    # The second request passed its checks before the first one created the version.
    monkeypatch.setattr("projects.training.service.check_request", lambda request: None)
    with pytest.raises(TrainingError, match="model version 'v2' was created a moment ago"):
        create_rekognition_run(seed_request(seed))
    assert list(TrainingRun.objects.values_list("pk", flat=True)) == [first.pk]
    assert list(project.model_versions.filter(name="v2").values_list("pk", flat=True)) == [
        first.model_version_id]


def test_a_project_without_arn_or_output_location_is_refused(seed):
    project, v1, v2 = seed
    project.output_location = ""
    project.save()
    with pytest.raises(TrainingError, match="has no output location"):
        create_rekognition_run(TrainingRequest(iteration=v2, version_name="v2", test_from=v1))
    project.rekognition_project_arn = ""
    project.save()
    with pytest.raises(TrainingError, match="has no Rekognition project ARN"):
        create_rekognition_run(TrainingRequest(iteration=v2, version_name="v2", test_from=v1))


def test_line_problems_reads_errors_at_every_level():
    line = {
        "source-ref": "s3://b/x.jpg",
        "errors": ["ERROR_INVALID_IMAGE"],
        "warnings": [{"code": "WARNING_NO_ANNOTATIONS", "message": "No annotations."}],
        "bounding-box": {"annotations": [{"class_id": 0},
                                         {"class_id": 0, "cl-errors": [{"code": "ERROR_X"}]}]},
        "bounding-box-metadata": {"errors": [{"code": "ERROR_MISSING_CLASS_MAP"}]},
    }
    assert line_problems(json.dumps(line)) == (
        "s3://b/x.jpg",
        ["ERROR_INVALID_IMAGE", "box 2: ERROR_X", "ERROR_MISSING_CLASS_MAP"],
        ["WARNING_NO_ANNOTATIONS: No annotations."],
    )
    assert line_problems("{")[1][0].startswith("not JSON")


@pytest.fixture
def training_run(seed):
    project, v1, v2 = seed
    model = ModelVersion.objects.create(project=project, name="v2", kind=ModelVersion.Kind.REKOGNITION,
                                        arn=VERSION_ARN, status="TRAINING_IN_PROGRESS")
    return TrainingRun.objects.create(
        project=project, iteration=v2, model_version=model, kind=ModelVersion.Kind.REKOGNITION,
        status=RunStatus.RUNNING, details={"phase": "training", "version_name": "v2", "test_from": v1.pk})


def test_failed_polls_of_a_training_version_are_retried_then_given_up(rekognition_stubber, training_run):
    run = training_run
    rekognition_stubber.add_client_error("describe_project_versions", "InternalServerError", "try later")
    rekognition_stubber.add_response("describe_project_versions", version_description("TRAINING_IN_PROGRESS"))
    assert advance(run) is False
    assert (run.details["notes"], run.status) == (
        ["poll 1 failed: Rekognition error InternalServerError: try later"], RunStatus.RUNNING)
    assert advance(run) is False
    assert run.details["poll_errors"] == 0
    for _ in range(5):
        rekognition_stubber.add_client_error("describe_project_versions", "InternalServerError", "try later")
    assert [advance(run) for _ in range(5)] == [False, False, False, False, True]
    run = TrainingRun.objects.get()
    assert (run.status, run.error) == (
        RunStatus.FAILED,
        "Loupe stopped following the training after 5 failed polls (Rekognition error InternalServerError: "
        "try later); it may go on in Rekognition: 'manage.py sync_models logos' reads its outcome")
    # The version exists in Rekognition: Loupe does not call it failed.
    assert (run.model_version.status, run.model_version.arn) == ("TRAINING_IN_PROGRESS", VERSION_ARN)


def test_a_version_already_started_counts_as_trained(rekognition_stubber, training_run):
    rekognition_stubber.add_response("describe_project_versions", version_description(
        "RUNNING", StatusMessage="The model is running.", EvaluationResult={"F1Score": 0.5}))
    assert advance(training_run) is True
    training_run.refresh_from_db()
    assert (training_run.status, training_run.model_version.status, training_run.model_version.f1) == (
        RunStatus.SUCCEEDED, "RUNNING", 0.5)


def test_a_manifest_rekognition_would_refuse_is_not_published(rekognition_stubber, s3, seed, owner):
    from tests.projects.training.conftest import reviewed

    project, v1, v2 = seed
    s3.create_bucket(Bucket="out-bucket")
    reviewed(v2, "s3://other-bucket/v2/f.jpg", ("aws-logo", (1, 2, 30, 40)))
    run = begin(create_rekognition_run(seed_request(seed), user=owner))
    rekognition_stubber.add_response("describe_projects", project_description(), LOGOS)
    assert advance(run) is True
    export = Export.objects.get()
    assert run.error == (f"v2: the manifest breaks Rekognition's rules (mixed-buckets); fix them and export "
                         f"again (export #{export.pk} has the report)")
    assert (export.status, export.iteration) == (RunStatus.FAILED, v2)
    assert s3.list_objects_v2(Bucket="out-bucket")["KeyCount"] == 0
    assert ModelVersion.objects.get(name="v2").status == ModelVersion.Status.FAILED


def test_lines_a_created_dataset_left_out_are_listed_and_training_starts(rekognition_stubber, seed, owner):
    project, v1, v2 = seed
    model = ModelVersion.objects.create(project=project, name="v2", kind=ModelVersion.Kind.REKOGNITION,
                                        status=ModelVersion.Status.TRAINING)
    run = TrainingRun.objects.create(
        project=project, iteration=v2, model_version=model, kind=ModelVersion.Kind.REKOGNITION,
        status=RunStatus.RUNNING, details={
            "phase": "datasets", "version_name": "v2", "test_from": v1.pk,
            "datasets": {"TRAIN": {"manifest": "s3://out-bucket/loupe/t.manifest", "arn": TRAIN_DATASET},
                         "TEST": {"manifest": "s3://out-bucket/loupe/v.manifest", "arn": TEST_DATASET,
                                  "status": "CREATE_COMPLETE"}}})
    rekognition_stubber.add_response("describe_dataset", dataset_description("CREATE_COMPLETE", errors=1),
                                     {"DatasetArn": TRAIN_DATASET})
    rekognition_stubber.add_response("list_dataset_entries", {"DatasetEntries": [json.dumps(
        {"source-ref": "s3://my-bucket/v2/e.jpg", "errors": [{"code": "ERROR_NO_VALID_ANNOTATIONS"}]})]},
        {"DatasetArn": TRAIN_DATASET, "HasErrors": True})
    rekognition_stubber.add_response("create_project_version", {"ProjectVersionArn": VERSION_ARN})
    assert advance(run) is False
    rekognition_stubber.assert_no_pending_responses()
    assert run.details["phase"] == "training"
    assert [(p["set"], p["image"], p["errors"]) for p in run.details["problems"]] == [
        ("TRAIN", "e.jpg", ["ERROR_NO_VALID_ANNOTATIONS"])]
