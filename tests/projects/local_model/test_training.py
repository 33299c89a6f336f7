import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse

from projects import geometry
from projects.demo import data as demodata
from projects.demo import workflow as demo_workflow
from projects.detections import UNCERTAIN_BAND, Detection
from projects.local_model import detector, evaluation
from projects.local_model.forms import TrainLocalModelForm
from projects.local_model.learning import evaluate, train_local_model
from projects.local_model.tasks import start_local_training
from projects.local_model.training import TrainingError
from projects.models import Membership, ModelVersion, RunStatus, TrainingRun
from tests.factories import label, make_user, thresholds

pytestmark = pytest.mark.django_db
SIZES = {"v1": 4, "v2": 2, "test": 4}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def project(tmp_path, owner):
    """The demo project in small: v1 and test imported as labeled, v2 unreviewed."""
    folder = tmp_path / "demo"
    demodata.generate_demo_data(folder=folder, sizes=SIZES)
    project = demo_workflow.ensure_project(slug="logos", name="Logos")
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    for name, labeled in (("v1", True), ("v2", False), ("test", True)):
        iteration = demo_workflow.ensure_iteration(project, name)
        demo_workflow.load_set(iteration=iteration, folder=folder, set_name=name, labeled=labeled)
    return project


def iterations(project, *names):
    return [project.iterations.get(name=name) for name in names]


def test_training_stores_exemplars_thresholds_and_held_out_f1(project):
    v1, test = iterations(project, "v1", "test")

    model = train_local_model(project=project, iterations=[v1], name="v1", held_out=test)

    assert (model.kind, model.status, model.training_images, model.trained_from) == ("local", "READY", 4, v1)
    with default_storage.open(model.artifact, "rb") as handle:
        exemplars = detector.load_model(handle.read())
    assert exemplars.labels == ["aws-logo", "smile-logo"]
    assert model.evaluation["detector"] == "trained"
    by_name = {label.name: model.threshold_for(label.pk) for label in project.labels.all()}
    assert set(model.thresholds) == {str(label.pk) for label in project.labels.all()}
    assert all(0 <= value <= 100 for value in by_name.values())
    # The stored F1 is what the stored exemplars score on the held-out set at the stored thresholds.
    matching = evaluate(exemplars=exemplars, iteration=test)
    assert model.f1 == round(matching.f1(by_name), 4)
    assert 0 < model.f1 <= 1


def test_without_held_out_thresholds_default_and_f1_is_unknown(project):
    (v1,) = iterations(project, "v1")

    model = train_local_model(project=project, iterations=[v1], name="v1")

    assert model.thresholds == thresholds(project, {"aws-logo": 50.0, "smile-logo": 50.0})
    assert model.f1 is None


def test_the_trained_model_proposes_through_its_backend(project):
    v1, v2, test = iterations(project, "v1", "v2", "test")
    model = train_local_model(project=project, iterations=[v1], name="v1", held_out=test)

    found = detector.LocalDetectorBackend(model).detect(v2.images.first())

    assert found and all(isinstance(d, Detection) for d in found)
    threshold = {name: model.threshold_for(label(project, name).pk) for name in ("aws-logo", "smile-logo")}
    assert all(d.confidence >= threshold[d.label] - UNCERTAIN_BAND for d in found)
    assert all(0 <= d.confidence <= 100 for d in found)


@pytest.mark.parametrize("names, held_out, name, message", [
    (["v1"], "v1", "v9", "cannot also be trained on"),
    (["v2"], None, "v9", "no reviewed boxes in v2"),
    ([], None, "v9", "at least one iteration"),
    (["v1"], None, "", "a name"),
])
def test_refused_requests_create_no_model(project, names, held_out, name, message):
    held = iterations(project, held_out)[0] if held_out else None
    with pytest.raises(TrainingError, match=message):
        train_local_model(project=project, iterations=iterations(project, *names), name=name, held_out=held)
    assert not project.model_versions.exists()


def test_a_taken_name_is_refused_but_a_failed_attempt_does_not_hold_it(project):
    (v1,) = iterations(project, "v1")
    image = v1.images.first()
    default_storage.delete(image.source)
    with pytest.raises(FileNotFoundError):
        train_local_model(project=project, iterations=[v1], name="v1")
    failed = project.model_versions.get(name="v1")
    assert failed.status == "FAILED" and "FileNotFoundError" in failed.status_message

    image.delete()
    model = train_local_model(project=project, iterations=[v1], name="v1")
    assert model.status == "READY" and model.training_images == 3
    with pytest.raises(TrainingError, match="already has a model version named 'v1'"):
        train_local_model(project=project, iterations=[v1], name="v1")


def test_background_run_records_the_model_and_its_f1(project, owner):
    v1, test = iterations(project, "v1", "test")

    run = start_local_training(project=project, iterations=[v1], name="v1", held_out=test,
                                        user=owner)

    assert run.status == RunStatus.SUCCEEDED and run.task_id
    assert run.model_version == project.model_versions.get(name="v1")
    assert run.message == f"model v1 from v1, held out: test: 4 images, F1 {run.model_version.f1:.3f}"


def test_background_run_records_why_it_failed(project):
    (v2,) = iterations(project, "v2")

    run = start_local_training(project=project, iterations=[v2], name="v1")

    assert run.status == RunStatus.FAILED
    assert run.error == "no reviewed boxes in v2: review or import labeled images first"
    assert run.model_version is None


@pytest.mark.django_db(transaction=True)
def test_training_goes_through_the_database_worker(project, owner, database_tasks):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    v1, test = iterations(project, "v1", "test")
    run = start_local_training(project=project, iterations=[v1], name="v1", held_out=test, user=owner)
    assert (run.status, run.model_version) == (RunStatus.QUEUED, None)

    database_tasks()

    run.refresh_from_db()
    model = project.model_versions.get(name="v1")
    assert (run.status, run.model_version, run.error) == (RunStatus.SUCCEEDED, model, "")
    assert run.message == f"model v1 from v1, held out: test: 4 images, F1 {model.f1:.3f}"
    assert run.started_at <= run.heartbeat_at <= run.finished_at
    assert DBTaskResult.objects.get(pk=run.task_id).status == TaskResultStatus.SUCCESSFUL


def test_train_local_command(project, capsys):
    call_command("train_local", "logos", "--from", "v1", "--name", "v1", "--held-out", "test")

    model = project.model_versions.get(name="v1")
    out = capsys.readouterr().out
    assert f"Model logos:v1 is ready: 4 training images, F1 {model.f1:.3f} on test" in out
    with pytest.raises(CommandError, match="project 'logos' has no iteration 'v7'"):
        call_command("train_local", "logos", "--from", "v1,v7", "--name", "v2")
    with pytest.raises(CommandError, match="already has a model version named 'v1'"):
        call_command("train_local", "logos", "--from", "v1", "--name", "v1")


# -- the iteration page -------------------------------------------------------------------------------

def test_owner_sees_the_training_form_with_sensible_defaults(client, owner, project):
    client.force_login(owner)

    response = client.get(reverse("projects:iteration", args=["logos", "v1"]))

    (form,) = {id(d["form"]): d["form"] for context in response.context for d in context.dicts
               if isinstance(d.get("form"), TrainLocalModelForm)}.values()
    assert b"Train from this iteration" in response.content
    assert form.initial["name"] == "v1"
    assert form.initial["held_out"] == project.iterations.get(name="test").pk


def test_reviewer_sees_no_training_form_and_cannot_start(client, project):
    reviewer = make_user("rev")
    Membership.objects.create(project=project, user=reviewer, role=Membership.Role.REVIEWER)
    client.force_login(reviewer)

    page = client.get(reverse("projects:iteration", args=["logos", "v1"]))
    response = client.post(reverse("projects:training-start", args=["logos", "v1"]), {"name": "v1"})

    assert b"Train from this iteration" not in page.content
    assert response.status_code == 403
    assert client.post(reverse("projects:training-start", args=["other", "v1"])).status_code == 404
    assert not TrainingRun.objects.exists()


def test_owner_starts_training_and_sees_its_status(client, owner, project):
    client.force_login(owner)
    test = project.iterations.get(name="test")
    url = reverse("projects:training-start", args=["logos", "v1"])

    response = client.post(url, {"name": "v1", "include_earlier": "on", "held_out": test.pk}, **HTMX)

    run = TrainingRun.objects.get()
    model = ModelVersion.objects.get(name="v1")
    assert run.status == RunStatus.SUCCEEDED and run.created_by == owner
    assert f"F1 {model.f1:.3f} on the held-out set".encode() in response.content
    assert response.context["form"].initial["name"] == "v2"
    status = client.get(reverse("projects:training-run", args=["logos", "v1", run.pk]), **HTMX)
    assert b"Succeeded" in status.content and b"hx-trigger" not in status.content


def test_training_from_a_later_iteration_includes_earlier_ones(client, owner, project):
    client.force_login(owner)
    v1, v2 = iterations(project, "v1", "v2")
    v2.images.update(status="reviewed")  # verified empty: clutter to learn from

    response = client.post(reverse("projects:training-start", args=["logos", "v2"]),
                           {"name": "v5", "include_earlier": "on"})

    assert response.status_code == 302
    model = ModelVersion.objects.get(name="v5")
    assert (model.training_images, model.trained_from) == (4 + 2, v2)


def test_invalid_training_requests_say_why(client, owner, project):
    client.force_login(owner)
    train_local_model(project=project, iterations=iterations(project, "v1"), name="v1")
    url = reverse("projects:training-start", args=["logos", "v1"])

    taken = client.post(url, {"name": "v1"}, **HTMX)
    bad_held_out = client.post(url, {"name": "v2", "held_out": 99999}, **HTMX)
    redirected = client.post(url, {"name": ""}, follow=True)

    assert b"A model version named &#x27;v1&#x27; already exists." in taken.content
    assert b"Select a valid choice" in bad_held_out.content
    assert [str(m) for m in redirected.context["messages"]] == ["Model name: This field is required."]
    assert not TrainingRun.objects.exists()


def test_the_form_lets_a_failed_attempts_name_be_used_again_like_the_command(project):
    from projects.models import ModelVersion

    (v1,) = iterations(project, "v1")
    ModelVersion.objects.create(project=project, name="v2", kind="local", status="FAILED")
    form = TrainLocalModelForm({"name": "v2"}, iteration=v1)
    assert form.is_valid(), form.errors
    ModelVersion.objects.create(project=project, name="v3", kind="local", status="READY")
    assert TrainLocalModelForm({"name": "v3"}, iteration=v1).errors["name"] == [
        "A model version named 'v3' already exists."]


# -- evaluation ------------------------------------------------------------------------------------

def test_matching_counts_duplicates_and_wrong_labels_as_false_positives():
    truth = [("a", (0, 0, 10, 10)), ("b", (50, 50, 10, 10))]
    detections = [
        Detection("a", 90, (0, 0, 10, 10)),
        Detection("a", 80, (1, 1, 10, 10)),  # the same object again
        Detection("a", 70, (50, 50, 10, 10)),  # right place, wrong label
    ]

    matching = evaluation.match_images([(truth, detections)])

    counts = matching.counts()
    assert (counts.tp, counts.fp, counts.fn) == (1, 2, 1)
    assert counts.f1 == pytest.approx(2 / (2 + 2 + 1))


def test_best_threshold_drops_confident_enough_mistakes():
    truth = [("a", (0, 0, 10, 10)), ("a", (100, 0, 10, 10))]
    detections = [Detection("a", 90, (0, 0, 10, 10)), Detection("a", 60, (100, 0, 10, 10)),
                  Detection("a", 40, (300, 300, 10, 10))]

    matching = evaluation.match_images([(truth, detections)])
    thresholds = evaluation.best_thresholds(matching, ["a", "b"])

    assert thresholds == {"a": 60, "b": 100.0}
    assert matching.f1(thresholds) == 1.0
    assert matching.f1() == pytest.approx(0.8)


def test_iou():
    assert geometry.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert geometry.iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


# -- the web process stays light ----------------------------------------------------------------------

def test_serving_pages_does_not_load_opencv():
    """Every web process imports the URLconf (and with it the training views and panels); the
    detector's OpenCV is for the workers that train or propose."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    code = (
        "import sys, django; django.setup(); import config.urls; "
        "import projects.training.panels, projects.proposals.panels; "
        "print('cv2' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
