import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from projects.models import Membership, Project
from tests.factories import image_bytes, make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_project_with_labels_and_hotkeys():
    out = run("create_project", "logos", "--name", "Logos", "--labels", "aws-logo, smile-logo",
              "--region", "eu-west-1", "--bucket", "my-bucket")
    assert out == "Created project logos (aws-logo, smile-logo).\n"
    project = Project.objects.get(slug="logos")
    assert (project.name, project.region, project.image_bucket) == ("Logos", "eu-west-1", "my-bucket")
    assert list(project.labels.values_list("name", "hotkey", "order")) == [
        ("aws-logo", 1, 0), ("smile-logo", 2, 1)]


@pytest.mark.parametrize("args, message", [
    (["Bad Slug"], "slug: .*Use lowercase letters, digits and hyphens"),
    (["logos", "--labels", "a,a"], "label names must be unique"),
])
def test_create_project_errors(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_project", *args)
    assert Project.objects.count() == 0


def test_create_project_twice_is_an_error():
    make_project("logos")
    with pytest.raises(CommandError, match="project 'logos' already exists"):
        run("create_project", "logos")


def test_create_iteration():
    make_project("logos")
    assert run("create_iteration", "logos/v2") == "Created iteration logos/v2.\n"
    with pytest.raises(CommandError, match="iteration logos/v2 already exists"):
        run("create_iteration", "logos/v2")
    with pytest.raises(CommandError, match="no project 'nope'"):
        run("create_iteration", "nope/v2")
    with pytest.raises(CommandError, match="is not PROJECT/ITERATION"):
        run("create_iteration", "logos")


def test_add_member():
    make_project("logos")
    make_user("alice")
    assert run("add_member", "logos", "alice", "--role", "owner") == "alice is now owner of logos.\n"
    assert Membership.objects.get().role == "owner"
    run("add_member", "logos", "alice", "--role", "reviewer")
    assert Membership.objects.get().role == "reviewer"
    with pytest.raises(CommandError, match="no user named 'bob'"):
        run("add_member", "logos", "bob")


def test_import_images_from_folder_prints_summary_and_rejections(tmp_path):
    make_iteration(make_project("logos"), "v2")
    (tmp_path / "a.jpg").write_bytes(image_bytes(100, 100))
    (tmp_path / "b.txt").write_text("x")
    out = run("import_images", "logos/v2", str(tmp_path))
    assert out == (
        "rejected b.txt: not a .jpg, .jpeg or .png file\n"
        "logos/v2: 1 imported, 0 skipped as duplicates, 1 rejected.\n"
    )


def test_import_images_errors(tmp_path):
    make_iteration(make_project("logos"), "v2")
    with pytest.raises(CommandError, match="has no iteration 'v9'"):
        run("import_images", "logos/v9", str(tmp_path))
    with pytest.raises(CommandError, match="is not a folder"):
        run("import_images", "logos/v2", str(tmp_path / "missing"))


def test_import_images_without_aws_credentials(monkeypatch, tmp_path):
    import boto3

    from projects.aws import s3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session keeps the credentials an earlier test's client found.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    s3.client.cache_clear()
    make_iteration(make_project("logos"), "v2")
    try:
        with pytest.raises(CommandError, match="no AWS credentials found"):
            run("import_images", "logos/v2", "s3://bucket/v2/")
    finally:
        s3.client.cache_clear()


def test_import_images_from_s3(s3):
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="v2/a.jpg", Body=image_bytes(100, 100))
    make_iteration(make_project("logos"), "v2")
    out = run("import_images", "logos/v2", "s3://photos/v2/")
    assert out == "logos/v2: 1 imported, 0 skipped as duplicates, 0 rejected.\n"
