"""Issue 15, item 11: export_project / import_project move a whole project between installations."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from projects.models import Image, Project
from reviewer.editor.reviews import BoxInput, submit_review
from reviewer.queue import claim_next
from tests.factories import (
    make_box,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_user,
)

pytestmark = pytest.mark.django_db


def build():
    owner, reviewer = make_user("olga"), make_user("rita")
    project = make_project("logos", owner=owner, reviewer=reviewer, image_bucket="team-images")
    v1 = make_model_version(project, "v1")
    v2 = make_model_version(project, "v2", trained_from=None)
    iteration = make_iteration(project, "v2", shown_model=v1)
    make_iteration(project, "test")
    v2.trained_from = iteration  # refers forward to an iteration: set after all rows exist
    v2.save()
    first = make_image(iteration, source="s3://team-images/v2/a.jpg", width=200, height=100)
    second = make_image(iteration, source="s3://team-images/v2/b.jpg", width=200, height=100)
    keep = make_proposal(first, "aws-logo", (10, 20, 50, 30), confidence=95.0, model_version=v1)
    make_proposal(first, "smile-logo", (100, 20, 50, 30), confidence=40.0, model_version=v1)
    make_proposal(second, "aws-logo", (1, 2, 30, 40), confidence=70.0, model_version=v2)
    claim_next(iteration=iteration, user=reviewer)
    first.refresh_from_db()
    submit_review(image=first, reviewer=reviewer, version=first.version, boxes=[
        BoxInput(label_id=keep.label_id, left=10, top=20, width=50, height=30, proposal_id=keep.pk)])
    make_box(second, "smile-logo", (5, 5, 20, 20))
    return project


def snapshot(project):
    """The project without primary keys: what must survive the move."""
    labels = {label.pk: label.name for label in project.labels.all()}

    def decision(d):
        d = dict(d)
        d["label"] = labels.get(d.get("label"))
        if d.get("proposal") is not None:
            from projects.models import Proposal
            p = Proposal.objects.get(pk=d["proposal"])
            d["proposal"] = (p.image.source, p.left, p.top, p.model_version.name)
        return d

    images = Image.objects.filter(iteration__project=project).order_by("source")
    return {
        "project": (project.name, project.region, project.image_bucket, project.review_order),
        "labels": sorted((label.name, label.color, label.hotkey, label.order)
                         for label in project.labels.all()),
        "members": sorted((m.user.username, m.role) for m in project.memberships.all()),
        "models": sorted((m.name, m.kind, m.status, m.trained_from.name if m.trained_from else None)
                         for m in project.model_versions.all()),
        "iterations": sorted((i.name, i.shown_model.name if i.shown_model else None)
                             for i in project.iterations.all()),
        "images": [(i.iteration.name, i.source, i.width, i.height, i.status, i.version, i.no_objects,
                    i.reviewed_by.username if i.reviewed_by else None) for i in images],
        "proposals": sorted((p.image.source, labels[p.label_id], p.left, p.top, p.width, p.height,
                             p.confidence, p.model_version.name)
                            for i in images for p in i.proposals.all()),
        "boxes": sorted((b.image.source, labels[b.label_id], b.left, b.top, b.width, b.height, b.origin,
                         b.proposal.confidence if b.proposal else None,
                         b.reviewer.username if b.reviewer else None)
                        for i in images for b in i.boxes.all()),
        "reviews": sorted((r.image.source, r.reviewer.username, r.no_objects, r.changed,
                           json.dumps([decision(d) for d in r.decisions], sort_keys=True))
                          for i in images for r in i.reviews.all()),
    }


def test_a_project_round_trips_through_export_and_import(tmp_path):
    project = build()
    before = snapshot(project)
    path = tmp_path / "logos.json"
    call_command("export_project", "logos", str(path), stdout=io.StringIO())
    # Another installation: the same file imported under another name, with the same accounts.
    out = io.StringIO()
    call_command("import_project", str(path), "--slug", "logos-copy", stdout=out)
    assert out.getvalue() == "Imported project logos-copy: 2 iterations, 2 images.\n"
    copy = Project.objects.get(slug="logos-copy")
    assert snapshot(copy) == before
    assert before["reviews"] and before["proposals"] and before["boxes"]


def test_reviewers_without_an_account_get_one_that_cannot_log_in(tmp_path):
    build()
    path = tmp_path / "logos.json"
    call_command("export_project", "logos", str(path), stdout=io.StringIO())
    Project.objects.all().delete()
    from reviewer.models import Review

    Review.objects.all().delete()
    get_user_model().objects.filter(username="rita").delete()
    call_command("import_project", str(path), stdout=io.StringIO())
    rita = get_user_model().objects.get(username="rita")
    assert (rita.is_active, rita.has_usable_password()) == (False, False)
    assert Project.objects.get(slug="logos").memberships.filter(user=rita).exists()


def test_a_bad_file_imports_nothing(tmp_path):
    build()
    path = tmp_path / "logos.json"
    call_command("export_project", "logos", str(path), stdout=io.StringIO())
    with pytest.raises(CommandError) as info:
        call_command("import_project", str(path), stdout=io.StringIO())
    assert str(info.value) == (f"cannot import {path}: a project 'logos' exists already: import under "
                               "another name with --slug; nothing was imported")
    document = json.loads(path.read_text())
    document["reviews"][0]["image_id"] = 10**9  # refers to no image in the file
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError):
        call_command("import_project", str(path), "--slug", "broken", stdout=io.StringIO())
    assert not Project.objects.filter(slug="broken").exists()
    assert Image.objects.count() == 2
