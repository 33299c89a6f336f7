import json

import pytest
from django.core.management import call_command

from projects.demo import data as demodata
from projects.demo import workflow as demo_workflow
from projects.manifests.checks import validate_lines
from projects.models import Image, ModelVersion, Project, ProposalRun
from reviewer import simulation
from reviewer.models import Box, Review
from tests.factories import (
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    thresholds,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def run_loop(capsys, *args):
    call_command("demo_loop", "--size", "reduced", "--json", *args)
    out = capsys.readouterr().out
    return out, json.loads(out.strip().splitlines()[-1])


def test_demo_loop_runs_the_whole_loop_on_real_figures_then_leaves_no_trace(capsys, var_dir, media_root,
                                                                             monkeypatch):
    logos = make_project("logos")
    make_image(make_iteration(logos, "v1"))
    # One run of the loop (the slowest test of the suite) serves both: its project is checked just
    # before the command removes it.
    seen = {}
    remove = demo_workflow.delete_project

    def check_then_remove(project):
        seen["models"] = _check_the_loop_ran(project, var_dir)
        remove(project)

    monkeypatch.setattr(demo_workflow, "delete_project", check_then_remove)

    out, figures = run_loop(capsys)

    models = seen["models"]
    assert figures == {
        "v1": {"train_images": 4, "f1": round(models["v1"], 3)},
        "v2": {"train_images": 4 + 6, "f1": round(models["v2"], 3)},
    }
    # The point of the loop: the reviewed iteration makes the next model better on the test set.
    assert figures["v2"]["f1"] > figures["v1"]["f1"]
    assert "model  training images" in out and "throwaway project removed" in out
    # No trace: only the other project is left, with its one image, and no stored file.
    assert list(Project.objects.values_list("slug", flat=True)) == ["logos"]
    assert not ModelVersion.objects.exists()
    assert Image.objects.count() == 1
    assert [path for path in media_root.rglob("*") if path.is_file()] == []


def _check_the_loop_ran(project, var_dir):
    """The loop's project as it stands at the end; returns the F1 of each model by name."""
    assert project.slug == "demo-loop-1"
    models = {m.name: m for m in project.model_versions.all()}
    assert {name: m.training_images for name, m in models.items()} == {"v1": 4, "v2": 10}
    v2 = project.iterations.get(name="v2")
    # Every v2 image went through the review service, by the simulated reviewers, taking turns.
    reviews = Review.objects.filter(image__iteration=v2)
    assert reviews.count() == 6
    assert set(reviews.values_list("reviewer__username", flat=True)) == {
        "demo-loop-reviewer-1", "demo-loop-reviewer-2"}
    assert not v2.images.exclude(status=Image.Status.REVIEWED).exists()
    truth = {image.name: image.objects for image in
             (demodata.demo_image(demodata.DEFAULT_SEED, "v2", index) for index in range(6))}
    assert Box.objects.filter(image__iteration=v2).count() == sum(len(t) for t in truth.values())
    # The proposals came from model v1 and some of them were kept by the reviewers.
    assert v2.shown_model == models["v1"]
    assert Box.objects.filter(image__iteration=v2, proposal__model_version=models["v1"]).exists()
    manifest = var_dir / "demo-loop" / "demo-loop-1-v2.manifest"
    assert validate_lines(manifest.read_text().splitlines()).ok
    assert len(manifest.read_text().splitlines()) == 6
    return {name: m.f1 for name, m in models.items()}


def test_setup_demo_is_idempotent(capsys):
    call_command("setup_demo", "--size", "reduced")
    project = Project.objects.get(slug="logos")
    first = _snapshot(project)
    out = capsys.readouterr().out

    call_command("setup_demo", "--size", "reduced")

    assert _snapshot(project) == first
    assert first["images"] == {"v1": 4, "v2": 6, "test": 4}
    assert first["models"] == [("v1", "local", "READY", 4)]
    assert first["runs"] == 1 and first["proposals"] > 0
    assert first["members"] == [("demo-owner", "owner"), ("demo-reviewer", "reviewer")]
    assert "demo-owner / loupe-demo (owner)" in out
    assert "http://127.0.0.1:8000/review/logos/v2/next" in out


def _snapshot(project):
    return {
        "images": {i.name: i.images.count() for i in project.iterations.all()},
        "boxes": Box.objects.filter(image__iteration__project=project).count(),
        "models": list(project.model_versions.values_list("name", "kind", "status", "training_images")),
        "model_ids": list(project.model_versions.values_list("pk", flat=True)),
        "runs": ProposalRun.objects.filter(iteration__project=project).count(),
        "proposals": ModelVersion.objects.get(project=project, name="v1").proposals.count(),
        "members": sorted(project.memberships.values_list("user__username", "role")),
    }


def test_simulated_reviewer_accepts_fixes_rejects_and_adds():
    project = make_project()
    model = make_model_version(project, "v1", kind="local",
                               thresholds=thresholds(project, {"aws-logo": 50, "smile-logo": 50}))
    iteration = make_iteration(project, "v2", shown_model=model)
    image = make_image(iteration, width=400, height=300)
    exact = make_proposal(image, "aws-logo", (10, 10, 100, 50), confidence=90, model_version=model)
    loose = make_proposal(image, "smile-logo", (200, 100, 60, 60), confidence=70, model_version=model)
    wrong = make_proposal(image, "smile-logo", (300, 200, 40, 40), confidence=60, model_version=model)
    hidden = make_proposal(image, "aws-logo", (10, 200, 80, 40), confidence=30, model_version=model)
    truth = [demodata.DemoObject("aws-logo", (10, 10, 100, 50)),
             demodata.DemoObject("smile-logo", (205, 105, 50, 50)),
             demodata.DemoObject("aws-logo", (12, 202, 80, 40))]
    labels = dict(project.labels.values_list("name", "id"))

    review = simulation.review_against_truth(image=image, truth=truth, labels=labels)

    assert review.hidden == [hidden.pk]
    assert [(b.proposal_id, b.left, b.top, b.width, b.height) for b in review.boxes] == [
        (exact.pk, 10, 10, 100, 50),  # fits: accepted untouched
        (loose.pk, 205, 105, 50, 50),  # overlaps but loose: redrawn to the object
        (None, 12, 202, 80, 40),  # its proposal was hidden below threshold: drawn anew
    ]
    assert wrong.pk not in {b.proposal_id for b in review.boxes}
