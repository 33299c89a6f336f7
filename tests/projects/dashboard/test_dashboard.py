"""The project page: the owners' dashboard (lineage, Loupe's F1 beside the reported one, charts)
and the reviewers' simple view."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects.dashboard import metrics, panels
from projects.dashboard import views as dashboard_views
from projects.models import Image, IterationMetrics
from reviewer.models import Box
from tests.factories import (
    make_box,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_review,
    make_user,
    thresholds,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(owner, reviewer):
    """v1 (imported truth) trained local model v1 (reported F1 0.8); v1 proposed on v2, where alice
    reviewed 2 of 3 images; Rekognition model v2 (reported F1 0.9) was trained from v2."""
    project = make_project("logos", owner=owner, reviewer=reviewer, name="Logos")
    v1 = make_iteration(project, "v1")
    image = make_image(v1)
    make_box(image, "aws-logo")
    Image.objects.filter(pk=image.pk).update(status=Image.Status.REVIEWED)
    model_v1 = make_model_version(project, "v1", kind="local", f1=0.8, trained_from=v1,
                                  thresholds=thresholds(project, {"aws-logo": 50, "smile-logo": 50}))
    v2 = make_iteration(project, "v2", shown_model=model_v1)
    make_model_version(project, "v2", kind="rekognition", f1=0.9, trained_from=v2)
    alice = make_user("alice")
    found, missed, pending = make_image(v2), make_image(v2), make_image(v2)
    p1 = make_proposal(found, "aws-logo", (0, 0, 100, 100), confidence=90, model_version=model_v1)
    make_box(found, "aws-logo", (0, 0, 100, 100), origin=Box.Origin.ACCEPTED, proposal=p1)
    make_review(found, alice, elapsed_ms=30_000,
                decisions=[{"proposal": p1.pk, "verdict": "accepted", "label": p1.label_id}])
    p2 = make_proposal(missed, "aws-logo", (300, 300, 50, 50), confidence=80, model_version=model_v1)
    make_box(missed, "smile-logo", (0, 0, 50, 50), origin=Box.Origin.ADDED)
    make_review(missed, alice, elapsed_ms=60_000,
                decisions=[{"proposal": p2.pk, "verdict": "rejected", "label": p2.label_id, "hidden": False}])
    make_proposal(pending, "aws-logo", confidence=70, model_version=model_v1)
    return project


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def row_text(html, iteration):
    match = re.search(rf'<tr data-iteration="{iteration}">(.*?)</tr>', html, re.S)
    return text(match.group(1))


def test_owner_sees_lineage_both_f1s_and_the_charts(client, owner, project):
    client.force_login(owner)

    response = client.get(reverse("projects:detail", args=["logos"]))

    html = response.content.decode()
    assert "projects/dashboard.html" in {t.name for t in response.templates}
    lineage = re.search(r'data-testid="lineage">(.*?)</p>', html, re.S).group(1)
    assert text(lineage) == "v1 → model v1 → v2 → model v2"
    # v2: 1 of 2 objects found, 1 of 2 proposals false: F1 0.5 by Loupe; 0.8 reported by training.
    assert row_text(html, "v2") == (
        "v2 model v1 2 of 3 reviewed 0.500 0.800 (local training) model v2 (F1 0.900) "
        "Review Run proposals Download or publish manifest Train next version"
    )
    assert row_text(html, "v1").startswith("v1 none 1 of 1 reviewed – – model v1 (F1 0.800)")
    for chart in ("f1-versions", "pr-curve", "per-label", "throughput", "verdicts"):
        assert f'data-chart="{chart}"' in html
    f1_chart = re.search(r'data-chart="f1-versions".*?</figure>', html, re.S).group(0)
    assert "v1: measured by Loupe on reviewed images 0.50" in f1_chart
    assert "v1: reported by its training 0.80" in f1_chart
    assert "v2: reported by its training 0.90" in f1_chart
    details = text(re.search(r'data-testid="details">(.*?)</section>', html, re.S).group(1))
    assert "Model v1 on v2" in details
    assert "precision 0.500, recall 0.500, F1 0.500 (1 found, 1 false, 1 missed)" in details
    assert "Reviewers added 1 box for missed objects" in details
    assert "Median 45.0 s per image; 1 image left: about 45 s of one reviewer's time." in details
    assert "alice 2 45.0 80.0" in details
    assert "What reviewers did with v1&#x27;s 2 proposals" in html
    assert ">Start</button>" not in html  # no Rekognition model is startable here


def test_reviewers_keep_the_simple_page(client, reviewer, project):
    client.force_login(reviewer)

    response = client.get(reverse("projects:detail", args=["logos"]))

    html = response.content.decode()
    assert "projects/project_detail.html" in {t.name for t in response.templates}
    assert "data-chart" not in html and "Create iteration" not in html
    assert reverse("reviewer:next", args=["logos", "v2"]) in html
    assert not IterationMetrics.objects.exists()


def test_another_iteration_is_shown_on_request_and_unknown_names_show_none(client, owner, project):
    client.force_login(owner)
    url = reverse("projects:detail", args=["logos"])

    assert client.get(url, {"iteration": "v2"}).context["selected"].iteration.name == "v2"
    assert client.get(url, {"iteration": "v1"}).context["selected"] is None


def test_lineage_links_trained_models_to_the_iterations_they_proposed_on():
    class Named:
        def __init__(self, name, pk=None):
            self.name, self.pk = name, pk

    m1, m2 = Named("m1"), Named("m2")
    rows = [panels.IterationRow(Named("v1"), None, None, [m1]),
            panels.IterationRow(Named("v2"), m1, None, [m2]),
            panels.IterationRow(Named("test"), None, None, []),
            panels.IterationRow(Named("v3"), m2, None, [])]

    assert panels.lineage(rows) == [
        [("iteration", "v1"), ("model", "m1"), ("iteration", "v2"), ("model", "m2")],
        [("iteration", "test")],
        [("model", "m2"), ("iteration", "v3")],
    ]


def test_dashboard_queries_do_not_grow_with_iterations_and_models(client, owner, project):
    client.force_login(owner)
    url = reverse("projects:detail", args=["logos"])

    def queries():
        client.get(url)  # computes and stores what changed
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    before = queries()
    for number in range(3, 6):
        model = make_model_version(project, f"v{number - 1}b", kind="local", f1=0.5)
        iteration = make_iteration(project, f"v{number}", shown_model=model)
        image = make_image(iteration)
        make_proposal(image, "smile-logo", confidence=60, model_version=model)
        make_box(image, "smile-logo")
        make_review(image, make_user(f"reviewer-{number}"))

    assert queries() == before
    assert IterationMetrics.objects.count() == 4


def test_a_large_iteration_is_measured_in_the_background_meanwhile_the_page_says_so(
    client, owner, project, monkeypatch
):
    monkeypatch.setattr(metrics, "INLINE_IMAGES", 1)  # v2's 2 reviewed images are "large" now
    client.force_login(owner)
    url = reverse("projects:detail", args=["logos"])

    # The tests' task backend runs the queued pass at once: the next page has the figures.
    first = client.get(url).content.decode()
    second = client.get(url).content.decode()

    assert "(measuring)" in row_text(first, "v2")
    assert row_text(second, "v2").startswith("v2 model v1 2 of 3 reviewed 0.500 0.800")
    assert IterationMetrics.objects.get().refresh_queued_at is None


def test_one_background_pass_is_queued_however_often_the_page_is_opened(client, owner, project, monkeypatch):
    monkeypatch.setattr(metrics, "INLINE_IMAGES", 1)
    queued = []
    monkeypatch.setattr(dashboard_views, "schedule_refresh", lambda *args: queued.append(args))
    client.force_login(owner)
    url = reverse("projects:detail", args=["logos"])
    v2 = project.iterations.get(name="v2")
    metrics.refresh(v2, v2.shown_model)

    # A correction of an image already counted needs a whole pass: the stored figures stay shown.
    corrected = v2.images.filter(status=Image.Status.REVIEWED).first()
    make_review(corrected, make_user("bob"), elapsed_ms=5_000)
    pages = [client.get(url).content.decode() for _ in range(3)]

    assert len(queued) == 1
    assert all("0.500 (as of 2 reviewed; measuring)" in row_text(page, "v2") for page in pages)
