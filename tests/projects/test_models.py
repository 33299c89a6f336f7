import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, transaction
from django.db.models import RestrictedError
from django.utils import timezone

from projects.detections import Detection
from projects.models import (
    Export,
    Image,
    ImportRun,
    Iteration,
    LabelClass,
    Membership,
    ModelVersion,
    Project,
    Proposal,
    ProposalOutcome,
    ProposalRun,
    TrainingRun,
)
from projects.proposals.runs import store_detections
from reviewer.models import Box, Review
from tests.factories import (
    label,
    make_box,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_user,
    thresholds,
)

pytestmark = pytest.mark.django_db


def rejected(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_project_slug_and_label_names_are_unique():
    project = make_project("logos")
    rejected(lambda: Project.objects.create(slug="logos", name="Again"))
    rejected(lambda: LabelClass.objects.create(project=project, name="aws-logo"))


def test_label_hotkeys_are_unique_per_project_and_between_1_and_9():
    project = make_project("logos", labels=["a"])
    rejected(lambda: LabelClass.objects.create(project=project, name="b", hotkey=1))
    rejected(lambda: LabelClass.objects.create(project=project, name="c", hotkey=10))
    LabelClass.objects.create(project=project, name="d", hotkey=None)
    LabelClass.objects.create(project=project, name="e", hotkey=None)
    assert project.labels.filter(hotkey__isnull=True).count() == 2


def test_one_membership_per_user_and_project():
    user = make_user()
    project = make_project(owner=user)
    rejected(lambda: Membership.objects.create(project=project, user=user, role="reviewer"))


def test_image_source_is_unique_within_an_iteration_only():
    v1 = make_iteration(name="v1")
    v2 = make_iteration(v1.project, name="v2")
    make_image(v1, source="s3://b/a.jpg")
    make_image(v2, source="s3://b/a.jpg")
    rejected(lambda: make_image(v1, source="s3://b/a.jpg"))


def test_image_size_must_be_positive():
    iteration = make_iteration()
    rejected(lambda: Image.objects.create(iteration=iteration, source="x.jpg", name="x", width=0,
                                          height=10))


def test_proposal_confidence_and_geometry_constraints():
    image = make_image()
    project = image.iteration.project
    model = make_model_version(project)
    label = project.labels.first()

    def proposal(**fields):
        values = {"left": 1, "top": 1, "width": 5, "height": 5, "confidence": 50, **fields}
        return Proposal.objects.create(image=image, model_version=model, label=label, **values)

    rejected(lambda: proposal(confidence=100.5))
    rejected(lambda: proposal(confidence=-1))
    rejected(lambda: proposal(width=0))
    rejected(lambda: proposal(left=None))
    image_level = proposal(left=None, top=None, width=None, height=None)
    assert image_level.is_image_level is True


def test_box_geometry_must_be_positive():
    image = make_image()
    label = image.iteration.project.labels.first()
    rejected(lambda: Box.objects.create(image=image, label=label, left=-1, top=0, width=5, height=5,
                                        origin=Box.Origin.ADDED))
    rejected(lambda: Box.objects.create(image=image, label=label, left=0, top=0, width=0, height=5,
                                        origin=Box.Origin.ADDED))


# -- thresholds are kept by label id ---------------------------------------------------------------

def test_threshold_for_reads_by_label_id_and_defaults_to_50():
    project = make_project("logos")
    aws, smile = label(project, "aws-logo"), label(project, "smile-logo")
    model = make_model_version(project, thresholds=thresholds(project, {"aws-logo": 72.5}))

    assert model.thresholds == {str(aws.pk): 72.5}
    assert (model.threshold_for(aws.pk), model.threshold_for(smile.pk), model.threshold_for(None)) == (
        72.5, 50.0, 50.0)
    assert model.thresholds_by_label() == {aws.pk: 72.5, smile.pk: 50.0}


def test_renaming_a_label_keeps_its_threshold():
    project = make_project("logos")
    model = make_model_version(project, thresholds=thresholds(project, {"aws-logo": 80.0}))
    image = make_image(make_iteration(project, "v2"))
    aws = label(project, "aws-logo")
    aws.name = "amazon-logo"
    aws.save()

    assert model.threshold_for(aws.pk) == 80.0
    # A proposal 1 point below the renamed label's threshold is borderline: priority 1 + 0.99.
    store_detections(image=image, model_version=model,
                     detections=[Detection("amazon-logo", 79.0, (1.0, 1.0, 5.0, 5.0))])
    image.refresh_from_db()
    assert image.priority == 1.99


def test_migration_converts_thresholds_from_names_to_ids_and_back():
    migration = importlib.import_module(
        "projects.migrations.0006_thresholds_by_label_id_lease_pair_and_clear_names"
    )
    project = make_project("logos")
    aws, smile = label(project, "aws-logo"), label(project, "smile-logo")
    model = make_model_version(project, thresholds={"aws-logo": 70, "smile-logo": 40.5, "gone": 10})
    empty = make_model_version(project, "empty")

    migration.thresholds_by_label_id(django_apps, None)
    model.refresh_from_db()
    empty.refresh_from_db()
    assert (model.thresholds, empty.thresholds) == ({str(aws.pk): 70.0, str(smile.pk): 40.5}, {})

    migration.thresholds_by_label_name(django_apps, None)
    model.refresh_from_db()
    assert model.thresholds == {"aws-logo": 70.0, "smile-logo": 40.5}


# -- deleting labels and projects -----------------------------------------------------------------

def test_a_label_used_by_boxes_or_proposals_cannot_be_deleted():
    project = make_project("logos", labels=["boxed", "proposed", "unused"])
    image = make_image(make_iteration(project, "v2"))
    make_box(image, "boxed")
    make_proposal(image, "proposed")

    with pytest.raises(RestrictedError, match="referenced through restricted foreign keys"):
        label(project, "boxed").delete()
    with pytest.raises(RestrictedError, match="referenced through restricted foreign keys"):
        label(project, "proposed").delete()
    label(project, "unused").delete()
    assert list(project.labels.values_list("name", flat=True)) == ["boxed", "proposed"]


def test_deleting_a_project_deletes_everything_in_it():
    reviewer = make_user()
    project = make_project("logos", reviewer=reviewer)
    other = make_project("other")
    v1 = make_iteration(project, "v1")
    model = make_model_version(project, trained_from=v1)
    v2 = make_iteration(project, "v2", shown_model=model)
    image = make_image(v2, leased_by=reviewer, lease_expires_at=timezone.now())
    proposal = make_proposal(image, "aws-logo", model_version=model)
    make_box(image, "aws-logo", proposal=proposal, origin=Box.Origin.ACCEPTED, reviewer=reviewer)
    make_box(make_image(v1), "smile-logo")
    Review.objects.create(image=image, reviewer=reviewer)
    run = ProposalRun.objects.create(iteration=v2, model_version=model)
    ProposalOutcome.objects.create(image=image, model_version=model, run=run)
    ImportRun.objects.create(iteration=v2, source="s3://b/v2/")
    Export.objects.create(iteration=v2, kind=Export.Kind.DOWNLOAD)
    TrainingRun.objects.create(project=project, iteration=v1, model_version=model, kind="local")

    project.delete()

    remaining = [model.objects.count() for model in (
        Iteration, Image, LabelClass, ModelVersion, Proposal, Box, Review, ProposalRun, ProposalOutcome,
        ImportRun, Export, TrainingRun, Membership)]
    assert remaining == [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert list(LabelClass.objects.values_list("project__slug", flat=True)) == ["other", "other"]
    assert other.pk is not None and reviewer.pk is not None


# -- leases -----------------------------------------------------------------------------------------

def test_lease_holder_and_expiry_are_set_together():
    iteration = make_iteration()
    user = make_user()
    rejected(lambda: make_image(iteration, leased_by=user))
    rejected(lambda: make_image(iteration, lease_expires_at=timezone.now()))
    held = make_image(iteration, leased_by=user, lease_expires_at=timezone.now())
    free = make_image(iteration)
    earlier = timezone.now() - timedelta(seconds=1)
    assert (held.lease_is_free_at(earlier), free.lease_is_free_at(earlier)) == (False, True)


def test_deleting_a_user_ends_their_leases():
    user = make_user()
    image = make_image(leased_by=user, lease_expires_at=timezone.now() + timedelta(minutes=5))

    user.delete()

    image.refresh_from_db()
    assert (image.leased_by_id, image.lease_expires_at) == (None, None)
