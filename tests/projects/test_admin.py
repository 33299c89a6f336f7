import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.factories import (
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

CHANGELISTS = [
    "projects_project", "projects_labelclass", "projects_membership", "projects_iteration",
    "projects_image", "projects_modelversion", "projects_proposal", "reviewer_box",
    "reviewer_review", "projects_proposalrun", "projects_importrun", "projects_export",
    "projects_trainingrun", "projects_proposaloutcome",
]


def test_every_changelist_renders_with_search_for_a_superuser(client):
    image = make_image(make_iteration(make_project("logos"), "v1"))
    make_proposal(image, "aws-logo")
    make_box(image, "aws-logo")
    client.force_login(_superuser())
    statuses = [client.get(reverse(f"admin:{name}_changelist"), {"q": "a"}).status_code
                for name in CHANGELISTS]
    assert statuses == [200] * len(CHANGELISTS)


def _superuser():
    return make_user(superuser=True)


def test_staff_owner_sees_only_projects_they_own(client):
    owner = make_user(staff=True)
    owner.user_permissions.set(Permission.objects.filter(codename__in=["view_project", "view_image"]))
    mine = make_iteration(make_project("mine", owner=owner), "v1")
    theirs = make_iteration(make_project("theirs", reviewer=owner), "v1")
    make_image(mine, source="s3://b/mine.jpg")
    make_image(theirs, source="s3://b/theirs.jpg")
    client.force_login(owner)
    projects = client.get(reverse("admin:projects_project_changelist"))
    assert [p.slug for p in projects.context["cl"].result_list] == ["mine"]
    images = client.get(reverse("admin:projects_image_changelist"))
    assert [i.name for i in images.context["cl"].result_list] == ["mine.jpg"]


def test_staff_owner_can_only_pick_projects_they_own(client):
    owner = make_user(staff=True)
    owner.user_permissions.set(Permission.objects.filter(codename__in=["add_membership", "view_membership"]))
    make_project("mine", owner=owner)
    make_project("theirs", reviewer=owner)
    make_project("other")
    client.force_login(owner)
    response = client.get(reverse("admin:projects_membership_add"))
    choices = [label for _value, label in response.context["adminform"].form.fields["project"].choices]
    assert choices == ["---------", "mine"]


def test_admin_refuses_to_delete_a_label_in_use_and_says_why(client):
    project = make_project("logos")
    make_box(make_image(make_iteration(project, "v1")), "aws-logo")
    aws = project.labels.get(name="aws-logo")
    client.force_login(_superuser())

    response = client.post(reverse("admin:projects_labelclass_delete", args=[aws.pk]), {"post": "yes"})

    assert response.status_code == 200
    assert "would require deleting the following protected related objects" in response.content.decode()
    assert project.labels.filter(pk=aws.pk).exists()


def test_model_version_admin_shows_thresholds_by_label_name(client):
    project = make_project("logos")
    model = make_model_version(project, "m1", thresholds=thresholds(project, {"aws-logo": 72.5}))
    client.force_login(_superuser())

    response = client.get(reverse("admin:projects_modelversion_change", args=[model.pk]))

    assert "aws-logo: 72.5, smile-logo: 50" in response.content.decode()
