from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from projects.detections import Detection
from projects.models import ModelVersion, ProposalOutcome, ProposalRun, RunStatus
from projects.proposals import runs as proposals
from tests.factories import make_image, make_iteration, make_model_version, make_project, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/rk-1/1700000000001"


class InstantBackend:
    def detect(self, image):
        return [Detection("aws-logo", 90.0, (1.0, 2.0, 3.0, 4.0))]


@pytest.fixture
def iteration(owner, reviewer):
    project = make_project("logos", owner=owner, reviewer=reviewer)
    iteration = make_iteration(project, "v2")
    for n in range(3):
        make_image(iteration, source=f"s3://b/v2/{n}.jpg", position=n)
    return iteration


@pytest.fixture
def model(iteration):
    return make_model_version(iteration.project, "rk-1", kind=ModelVersion.Kind.REKOGNITION,
                              arn=VERSION_ARN, status="RUNNING")


def start_url():
    return reverse("projects:proposal-run-start", args=["logos", "v2"])


def test_owner_sees_the_start_form_and_reviewers_do_not(client, owner, reviewer, iteration, model):
    make_model_version(iteration.project, "batch", kind=ModelVersion.Kind.IMPORTED)
    url = reverse("projects:iteration", args=["logos", "v2"])
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert "No proposal run yet." in page
    assert f'hx-post="{start_url()}"' in page
    # Imported predictions cannot run, so they are not offered.
    assert f'<option value="{model.pk}">rk-1 (Rekognition Custom Labels, RUNNING)</option>' in page
    assert "batch" not in page
    client.force_login(reviewer)
    page = client.get(url).content.decode()
    assert "No proposal run yet." in page
    assert start_url() not in page


def test_owner_starts_a_run_with_htmx(client, owner, iteration, model, monkeypatch):
    monkeypatch.setattr(proposals, "backend_for", lambda model_version: InstantBackend())
    client.force_login(owner)
    response = client.post(start_url(), {"model_version": model.pk, "concurrency": 3}, **HTMX)
    assert response.status_code == 200
    run = ProposalRun.objects.get()
    assert (run.status, run.done, run.proposals, run.concurrency, run.created_by) == (
        RunStatus.SUCCEEDED, 3, 3, 3, owner
    )
    html = response.content.decode()
    assert html.startswith('<section id="proposals" class="proposals">')
    assert f"<p>Run #{run.pk} of <strong>rk-1</strong>: Succeeded (took " in html
    assert "3 of 3 images · 3 done · 0 failed · 3 proposals" in html
    assert "Reviewers see proposals from <strong>rk-1</strong>." in html
    # A finished run is not polled.
    assert "hx-trigger" not in html


def test_start_without_htmx_redirects(client, owner, iteration, model, monkeypatch):
    monkeypatch.setattr(proposals, "backend_for", lambda model_version: InstantBackend())
    client.force_login(owner)
    response = client.post(start_url(), {"model_version": model.pk, "concurrency": 4})
    assert (response.status_code, response["Location"]) == (302, "/p/logos/i/v2/")
    assert ProposalRun.objects.get().status == RunStatus.SUCCEEDED


def test_invalid_start_returns_the_panel_with_errors(client, owner, iteration, model):
    client.force_login(owner)
    response = client.post(start_url(), {"model_version": model.pk, "concurrency": 99}, **HTMX)
    assert response.status_code == 200
    assert (
        '<ul class="errorlist"><li>Concurrency: Ensure this value is less than or equal to 32.</li></ul>'
        in response.content.decode()
    )
    imported = make_model_version(iteration.project, "batch", kind=ModelVersion.Kind.IMPORTED)
    response = client.post(start_url(), {"model_version": imported.pk, "concurrency": 4}, **HTMX)
    assert (
        "<li>Model version: Select a valid choice. That choice is not one of the available choices.</li>"
        in response.content.decode()
    )
    response = client.post(start_url(), {"model_version": model.pk, "concurrency": "x"})
    assert response.status_code == 302
    assert not ProposalRun.objects.exists()


def _finished_run(iteration, model):
    run = ProposalRun.objects.create(
        iteration=iteration, model_version=model, status=RunStatus.STOPPED, concurrency=4, total=3,
        done=1, failed=1, proposals=2, error="model is not running: start it",
        started_at=datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 28, 9, 0, 42, tzinfo=UTC),
    )
    images = list(iteration.images.order_by("position"))
    ProposalOutcome.objects.create(image=images[0], model_version=model, run=run, proposals=2)
    ProposalOutcome.objects.create(image=images[1], model_version=model, run=run, ok=False,
                                   error_code="InvalidImageFormatException",
                                   error="Request has invalid image format")
    return run


def test_progress_fragment_exact_content(client, reviewer, iteration, model, django_assert_num_queries):
    run = _finished_run(iteration, model)
    client.force_login(reviewer)
    url = reverse("projects:proposal-run", args=["logos", "v2", run.pk])
    # Session, user, project, iteration, run, first failures, skipped-label count; and the active
    # runs of each of the 4 kinds, which polls reconcile at most once per fifth of the interval.
    with django_assert_num_queries(7 + 4):
        response = client.get(url, **HTMX)
    assert response.content.decode() == (
        '<div id="proposal-run" class="proposal-run">\n'
        f"  <p>Run #{run.pk} of <strong>rk-1</strong>: Stopped early (took 42 s)</p>\n"
        '  <progress max="100" value="66">66%</progress>\n'
        '  <p class="counts">2 of 3 images · 1 done · 1 failed · 2 proposals</p>\n'
        '  <p class="error">model is not running: start it</p>\n'
        "  \n"
        "  \n"
        '  <table class="list">\n'
        "    <thead><tr><th>Image</th><th>Error</th><th>Message</th></tr></thead>\n"
        "    <tbody>\n"
        "    <tr><td>1.jpg</td><td>InvalidImageFormatException</td>"
        "<td>Request has invalid image format</td></tr>\n"
        "    \n"
        "    </tbody>\n"
        "  </table>\n"
        "  \n"
        "  \n"
        "</div>\n"
    )


def test_an_active_run_keeps_polling(client, reviewer, iteration, model):
    # Alive: its worker has just sent a heartbeat.
    run = ProposalRun.objects.create(iteration=iteration, model_version=model, status=RunStatus.RUNNING,
                                     total=3, done=1, started_at=datetime(2026, 11, 28, tzinfo=UTC),
                                     heartbeat_at=timezone.now())
    client.force_login(reviewer)
    url = reverse("projects:proposal-run", args=["logos", "v2", run.pk])
    html = client.get(url, **HTMX).content.decode()
    assert html.startswith(
        f'<div id="proposal-run" class="proposal-run" hx-get="{url}" hx-trigger="every 2s" '
        'hx-swap="outerHTML">'
    )
    assert "1 of 3 images · 1 done · 0 failed · 0 proposals" in html
    assert client.get(url).status_code == 302


def test_access_rules(client, iteration, model, reviewer):
    run = _finished_run(iteration, model)
    urls_get = [
        reverse("projects:iteration", args=["logos", "v2"]),
        reverse("projects:proposal-run", args=["logos", "v2", run.pk]),
    ]
    urls_post = [
        start_url(),
        reverse("projects:model-start", args=["logos", model.pk]),
        reverse("projects:model-stop", args=["logos", model.pk]),
        reverse("projects:model-refresh", args=["logos", model.pk]),
    ]
    client.force_login(make_user("stranger"))
    assert [client.get(url, **HTMX).status_code for url in urls_get] == [404, 404]
    assert [client.post(url, **HTMX).status_code for url in urls_post] == [404, 404, 404, 404]
    client.force_login(reviewer)
    assert [client.get(url, **HTMX).status_code for url in urls_get] == [200, 200]
    assert [client.post(url, **HTMX).status_code for url in urls_post] == [403, 403, 403, 403]
    other = make_iteration(make_project("other", reviewer=reviewer), "v2")
    assert client.get(reverse("projects:proposal-run", args=["other", other.name, run.pk]),
                      **HTMX).status_code == 404


@pytest.fixture
def stubber(rekognition_stubber):
    return rekognition_stubber


def test_owner_starts_and_stops_a_model(client, owner, model, stubber):
    model.status = "STOPPED"
    model.save()
    stubber.add_response("start_project_version", {"Status": "STARTING"},
                         {"ProjectVersionArn": VERSION_ARN, "MinInferenceUnits": 1})
    client.force_login(owner)
    response = client.post(reverse("projects:model-start", args=["logos", model.pk]), **HTMX)
    html = response.content.decode()
    assert html.startswith(f'<td id="model-{model.pk}-serving" class="model-serving">')
    assert '<span class="error">Billed by the hour while starting</span>' in html
    assert ">Start</button>" not in html and ">Stop</button>" not in html
    model.refresh_from_db()
    assert model.status == "STARTING"

    model.status = "RUNNING"
    model.save()
    stubber.add_response("stop_project_version", {"Status": "STOPPING"}, {"ProjectVersionArn": VERSION_ARN})
    response = client.post(reverse("projects:model-stop", args=["logos", model.pk]))
    assert (response.status_code, response["Location"]) == (302, "/p/logos/")
    model.refresh_from_db()
    assert model.status == "STOPPING"


def test_model_start_error_is_shown_in_the_fragment(client, owner, model, stubber):
    stubber.add_client_error("start_project_version", "ResourceInUseException", "Version is running")
    client.force_login(owner)
    html = client.post(reverse("projects:model-start", args=["logos", model.pk]), **HTMX).content.decode()
    assert (
        '<p class="error">the model is busy (Version is running): wait for its current start or stop to '
        "finish</p>" in html
    )


def test_project_page_shows_model_controls_and_billing_note(client, owner, reviewer, model):
    model.status = "TRAINING_COMPLETED"
    model.save()
    client.force_login(owner)
    page = client.get(reverse("projects:detail", args=["logos"])).content.decode()
    assert ">Start</button>" in page
    assert "A started Rekognition model is billed for every hour it runs, used or not" in page
    client.force_login(reviewer)
    page = client.get(reverse("projects:detail", args=["logos"])).content.decode()
    assert ">Start</button>" not in page
