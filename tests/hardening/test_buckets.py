"""Issue 15, item 5: the bucket allow-list (LOUPE_ALLOWED_BUCKETS) and bucket-name syntax, enforced
in Project.clean() (so the settings form, the admin and create_project obey it), in S3 imports,
and bucket fields read-only in the admin for staff who are not superusers."""

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from config.env import env_bucket_list
from projects.images.importing import ImportSourceError, import_s3_prefix
from projects.models import Project
from tests.factories import make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db

NOT_ALLOWED = ("Bucket 'their-bucket' is not one this Loupe may use (LOUPE_ALLOWED_BUCKETS: "
               "team-images, team-output); ask the administrator to add it.")


@pytest.fixture(autouse=True)
def allowed(settings):
    settings.LOUPE_ALLOWED_BUCKETS = ["team-images", "team-output"]


@pytest.mark.parametrize(("raw", "parsed"), [
    ("", []), ("team-images", ["team-images"]),
    (" team-images , team-output ", ["team-images", "team-output"]),
])
def test_the_allow_list_is_parsed_strictly(monkeypatch, raw, parsed):
    monkeypatch.setenv("LOUPE_ALLOWED_BUCKETS", raw)
    assert env_bucket_list("LOUPE_ALLOWED_BUCKETS") == parsed


@pytest.mark.parametrize("raw", ["Team_Images", "s3://team-images", "a", "team-images,", "x..y", "-bad"])
def test_a_malformed_allow_list_stops_the_start(monkeypatch, raw):
    monkeypatch.setenv("LOUPE_ALLOWED_BUCKETS", raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_bucket_list("LOUPE_ALLOWED_BUCKETS")
    assert str(info.value).startswith(
        "LOUPE_ALLOWED_BUCKETS must be a comma-separated list of S3 bucket names")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("image_bucket", "their-bucket", NOT_ALLOWED),
    ("image_bucket", "Bad_Bucket",
     "Enter an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."),
    ("output_location", "s3://their-bucket/out/", NOT_ALLOWED),
    ("published_images_uri", "s3://their-bucket/img/", NOT_ALLOWED),
])
def test_project_clean_refuses_buckets_outside_the_allow_list(field, value, message):
    project = Project(slug="logos", name="Logos", **{field: value})
    with pytest.raises(ValidationError) as info:
        project.full_clean()
    assert info.value.message_dict == {field: [message]}


def test_allowed_buckets_pass_and_an_empty_list_allows_any(settings):
    Project(slug="logos", name="Logos", image_bucket="team-images",
            output_location="s3://team-output/m/").full_clean()
    settings.LOUPE_ALLOWED_BUCKETS = []
    Project(slug="logos", name="Logos", image_bucket="anyones-bucket").full_clean()


def test_the_settings_form_refuses_another_teams_bucket(client, monkeypatch):
    owner = make_user("olga")
    make_project("logos", owner=owner)
    client.force_login(owner)
    response = client.post(reverse("projects:settings", args=["logos"]), {
        "name": "Logos", "region": "us-east-1", "image_bucket": "their-bucket", "review_order": "hardest"})
    assert response.status_code == 200
    assert NOT_ALLOWED in response.content.decode().replace("&#x27;", "'")
    assert Project.objects.get(slug="logos").image_bucket == ""


def test_create_project_refuses_another_teams_bucket():
    with pytest.raises(CommandError) as info:
        call_command("create_project", "logos", "--labels", "a", "--bucket", "their-bucket")
    assert str(info.value) == f"image_bucket: {NOT_ALLOWED}"
    assert not Project.objects.exists()


def test_an_s3_import_from_a_bucket_outside_the_list_is_refused():
    iteration = make_iteration(make_project("logos"), "v2")
    with pytest.raises(ImportSourceError) as info:
        import_s3_prefix(iteration=iteration, uri="s3://their-bucket/v2/")
    assert str(info.value) == NOT_ALLOWED
    assert iteration.images.count() == 0


def test_bucket_fields_are_read_only_for_staff_who_are_not_superusers(client):
    staff = make_user("sam", staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(codename__in=["change_project", "view_project"]))
    project = make_project("logos", owner=staff, image_bucket="team-images")
    client.force_login(staff)
    url = reverse("admin:projects_project_change", args=[project.pk])
    page = client.get(url).content.decode()
    assert 'name="image_bucket"' not in page
    assert 'name="output_location"' not in page
    superuser = make_user("root", superuser=True, staff=True)
    client.force_login(superuser)
    assert 'name="image_bucket"' in client.get(url).content.decode()
