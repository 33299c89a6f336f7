import pytest
from django.db import IntegrityError, transaction

from projects.models import Image, LabelClass, Membership, Project, Proposal
from reviewer.models import Box
from tests.factories import make_image, make_iteration, make_model_version, make_project, make_user

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


def test_awaiting_review_queryset():
    iteration = make_iteration()
    pending = make_image(iteration)
    make_image(iteration, status=Image.Status.REVIEWED)
    assert list(Image.objects.awaiting_review()) == [pending]
