"""Boring factories: plain functions with explicit defaults, one row each."""

import io
import itertools

from django.contrib.auth import get_user_model
from django.db.models import F
from PIL import Image as PILImage

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
    ProposalRun,
    TrainingRun,
)
from reviewer.models import Box, Review

_counter = itertools.count(1)


def make_user(username=None, *, password="pw", staff=False, superuser=False):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(
        username=username, password=password, is_staff=staff or superuser, is_superuser=superuser
    )


def make_project(slug=None, *, labels=("aws-logo", "smile-logo"), owner=None, reviewer=None,
                 **fields):
    slug = slug or f"project-{next(_counter)}"
    project = Project.objects.create(slug=slug, name=fields.pop("name", slug.title()), **fields)
    for order, name in enumerate(labels):
        LabelClass.objects.create(project=project, name=name, order=order, hotkey=order + 1)
    if owner is not None:
        Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    if reviewer is not None:
        Membership.objects.create(project=project, user=reviewer, role=Membership.Role.REVIEWER)
    return project


def make_iteration(project=None, name="v1", **fields):
    project = project or make_project()
    return Iteration.objects.create(project=project, name=name, **fields)


def make_image(iteration=None, *, source=None, width=1024, height=768, **fields):
    iteration = iteration or make_iteration()
    number = next(_counter)
    source = source or f"s3://bucket/{iteration.name}/img-{number:05d}.jpg"
    fields.setdefault("name", source.rsplit("/", 1)[-1])
    fields.setdefault("position", number)
    return Image.objects.create(
        iteration=iteration, source=source, width=width, height=height, **fields
    )


def make_model_version(project, name="v1", *, kind=ModelVersion.Kind.IMPORTED, **fields):
    return ModelVersion.objects.create(project=project, name=name, kind=kind, **fields)


def thresholds(project, by_name):
    """What ModelVersion.thresholds holds for {label name: threshold}."""
    return ModelVersion.thresholds_from({label(project, name).pk: value for name, value in by_name.items()})


def label(project, name):
    return project.labels.get(name=name)


def make_proposal(image, label_name, box=(10, 20, 100, 50), *, confidence=90.0,
                  model_version=None):
    project = image.iteration.project
    model_version = model_version or (
        project.model_versions.first() or make_model_version(project)
    )
    left, top, width, height = box
    return Proposal.objects.create(
        image=image, model_version=model_version, label=label(project, label_name),
        left=left, top=top, width=width, height=height, confidence=confidence,
    )


def make_box(image, label_name, box=(10, 20, 100, 50), *, origin=Box.Origin.IMPORTED, **fields):
    left, top, width, height = box
    return Box.objects.create(
        image=image, label=label(image.iteration.project, label_name),
        left=left, top=top, width=width, height=height, origin=origin, **fields,
    )


def make_import_run(iteration, *, source="s3://photos/v1/", **fields):
    return ImportRun.objects.create(iteration=iteration, source=source, **fields)


def make_proposal_run(iteration, model_version=None, **fields):
    model_version = model_version or make_model_version(iteration.project, f"model-{next(_counter)}")
    return ProposalRun.objects.create(iteration=iteration, model_version=model_version, **fields)


def make_training_run(iteration, *, kind=ModelVersion.Kind.LOCAL, **fields):
    return TrainingRun.objects.create(project=iteration.project, iteration=iteration, kind=kind, **fields)


def make_export(iteration, *, kind=Export.Kind.S3, **fields):
    return Export.objects.create(iteration=iteration, kind=kind, **fields)


def image_bytes(width=128, height=96, fmt="JPEG", color=(200, 30, 30)):
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buffer, fmt)
    return buffer.getvalue()


def make_review(image, reviewer, *, decisions=(), elapsed_ms=10_000, **fields):
    """A Review row as the review service writes it (decisions as given); marks the image reviewed."""
    review = Review.objects.create(image=image, reviewer=reviewer, elapsed_ms=elapsed_ms,
                                   decisions=list(decisions), **fields)
    Image.objects.filter(pk=image.pk).update(status=Image.Status.REVIEWED, reviewed_by=reviewer,
                                             reviewed_at=review.submitted_at, version=F("version") + 1,
                                             changed=review.changed)
    return review
