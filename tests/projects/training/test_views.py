import json

import pytest
from django.urls import reverse

from projects.models import ModelVersion, RunStatus, TrainingRun
from projects.training import tasks
from projects.training.forms import TrainForm
from tests.projects.training.conftest import PROJECT_ARN, TEST_DATASET, TRAIN_DATASET, VERSION_ARN, WHEN

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, *args):
    return reverse(f"projects:{name}", args=["logos", "v2", *args])


def test_owner_sees_one_training_form_with_the_backend_choice_and_the_billing_note(client, owner, seed):
    project = seed[0]
    client.force_login(owner)
    page = client.get(url("iteration"))
    content = page.content.decode()
    assert "Train from this iteration" in content
    assert 'value="local"' in content and 'value="rekognition"' in content
    assert "Rekognition Custom Labels (training time is billed by AWS)" in content
    assert "<strong>training time is billed by AWS</strong>" in content
    assert "set the project&#x27;s Rekognition project ARN" not in content
    forms = [d["form"] for context in page.context for d in context.dicts
             if isinstance(d.get("form"), TrainForm)]
    assert forms[0].initial["name"] == "v1"
    project.output_location = ""
    project.save()
    assert "To train on Rekognition, set the project&#x27;s Rekognition project ARN and output location" in (
        client.get(url("iteration")).content.decode())


def test_owner_trains_on_rekognition_and_sees_the_dataset_errors_per_image(
        client, owner, seed, rekognition_stubber, s3, monkeypatch):
    project, v1, v2 = seed
    s3.create_bucket(Bucket="out-bucket")
    monkeypatch.setattr(tasks, "sleep", lambda seconds: None)
    stub = rekognition_stubber
    stub.add_response("describe_projects", {"ProjectDescriptions": [
        {"ProjectArn": PROJECT_ARN, "CreationTimestamp": WHEN, "Status": "CREATED", "Datasets": []}]})
    stub.add_response("create_dataset", {"DatasetArn": TRAIN_DATASET})
    stub.add_response("create_dataset", {"DatasetArn": TEST_DATASET})
    stub.add_response("describe_dataset", {"DatasetDescription": {
        "Status": "CREATE_FAILED", "StatusMessageCode": "CLIENT_ERROR", "StatusMessage": "Bad manifest.",
        "DatasetStats": {"ErrorEntries": 1}}}, {"DatasetArn": TRAIN_DATASET})
    stub.add_response("list_dataset_entries", {"DatasetEntries": [json.dumps(
        {"source-ref": "s3://my-bucket/v2/d.jpg",
         "errors": [{"code": "ERROR_INVALID_IMAGE", "message": "Not a JPEG."}]})]})
    stub.add_response("describe_dataset", {"DatasetDescription": {"Status": "CREATE_COMPLETE"}},
                      {"DatasetArn": TEST_DATASET})
    client.force_login(owner)

    response = client.post(url("training-start"), {"backend": "rekognition", "name": "v2", "held_out": v1.pk},
                           **HTMX)

    stub.assert_no_pending_responses()
    run = TrainingRun.objects.get()
    assert (run.kind, run.status, run.created_by) == (ModelVersion.Kind.REKOGNITION, RunStatus.FAILED, owner)
    content = response.content.decode()
    assert "Rekognition could not create the TRAIN dataset (TRAIN: Bad manifest. (CLIENT_ERROR))" in content
    d_image = v2.images.get(name="d.jpg")
    image_url = reverse("reviewer:image", args=[d_image.pk])
    assert (f'<tr><td>train</td>\n        <td><a href="{image_url}">d.jpg</a></td>\n'
            '        <td><span class="error">ERROR_INVALID_IMAGE: Not a JPEG.</span></td></tr>') in content


def test_a_running_rekognition_training_is_followed_every_ten_seconds(client, owner, seed):
    project, v1, v2 = seed
    model = ModelVersion.objects.create(
        project=project, name="v2", kind=ModelVersion.Kind.REKOGNITION, arn=VERSION_ARN,
        status=ModelVersion.Status.TRAINING_IN_PROGRESS, status_message="Rekognition is training")
    run = TrainingRun.objects.create(
        project=project, iteration=v2, model_version=model, kind=ModelVersion.Kind.REKOGNITION,
        status=RunStatus.RUNNING, message="Rekognition model v2 from v2, tested on v1",
        details={"phase": "training", "version_name": "v2"})
    client.force_login(owner)
    response = client.get(url("training-run", run.pk), **HTMX)
    content = response.content.decode()
    assert 'hx-trigger="every 10s"' in content
    assert (f"Training #{run.pk}: Rekognition model v2 from v2, tested on v1 · <strong>Running</strong> "
            "(Rekognition: Training in progress, Rekognition is training)") in content

    model.status, model.f1, model.thresholds = "TRAINING_COMPLETED", 0.847, {"aws-logo": 41.2}
    model.save()
    run.status = RunStatus.SUCCEEDED
    run.save()
    content = client.get(url("training-run", run.pk), **HTMX).content.decode()
    assert "hx-trigger" not in content
    assert ("Model <strong>v2</strong>: Training completed, F1 0.847 reported by Rekognition on the "
            "test set; assumed thresholds aws-logo 41.2.") in content


def test_a_refused_rekognition_request_says_why_and_starts_nothing(client, owner, seed):
    client.force_login(owner)
    response = client.post(url("training-start"), {"backend": "rekognition", "name": "v2"}, **HTMX)
    assert "Rekognition needs a test set: name a test iteration (e.g. v1) or a test fraction" in (
        response.content.decode())
    assert not TrainingRun.objects.exists()
    assert not ModelVersion.objects.exists()


def test_the_poll_task_queues_the_next_poll_while_rekognition_trains(seed, rekognition_stubber, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    project, v1, v2 = seed
    model = ModelVersion.objects.create(project=project, name="v2", kind=ModelVersion.Kind.REKOGNITION,
                                        arn=VERSION_ARN, status="TRAINING_IN_PROGRESS")
    run = TrainingRun.objects.create(
        project=project, iteration=v2, model_version=model, kind=ModelVersion.Kind.REKOGNITION,
        status=RunStatus.RUNNING, details={"phase": "training", "version_name": "v2"})
    rekognition_stubber.add_response("describe_project_versions", {"ProjectVersionDescriptions": [
        {"ProjectVersionArn": VERSION_ARN, "CreationTimestamp": WHEN, "Status": "TRAINING_IN_PROGRESS"}]},
        {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]})
    before = timezone.now()

    result = tasks.poll_rekognition_training.call(run_id=run.pk)

    rekognition_stubber.assert_no_pending_responses()
    assert result == {"status": RunStatus.RUNNING, "phase": "training", "error": ""}
    (queued,) = tasks.poll_rekognition_training.get_backend().results
    assert queued.args == [] and queued.kwargs == {"run_id": run.pk}
    assert before + timedelta(seconds=60) <= queued.task.run_after <= timezone.now() + timedelta(seconds=60)
    run.refresh_from_db()
    assert run.task_id == str(queued.id)


def test_the_form_frees_the_name_of_a_rekognition_attempt_that_never_reached_rekognition(seed):
    project, v1, v2 = seed
    ModelVersion.objects.create(project=project, name="v2", kind="rekognition", status="FAILED")
    ModelVersion.objects.create(project=project, name="v3", kind="rekognition", status="TRAINING_FAILED",
                                arn=VERSION_ARN)
    assert TrainForm({"backend": "rekognition", "name": "v2", "held_out": v1.pk}, iteration=v2).is_valid()
    assert TrainForm({"backend": "rekognition", "name": "v3", "held_out": v1.pk}, iteration=v2).errors[
        "name"] == ["A model version named 'v3' already exists."]
