import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from projects.models import Export, Image, RunStatus
from tests.factories import make_box, make_image, make_iteration, make_project, make_user
from tests.projects.manifests.test_export import SPEC_LINE

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 11, 28, 10, 15, 3, 123456, tzinfo=UTC)


@pytest.fixture
def iteration(owner, reviewer):
    project = make_project("logos", owner=owner, reviewer=reviewer)
    iteration = make_iteration(project, "v2")
    image = make_image(iteration, source="s3://my-bucket/v2/train/img-0007.jpg",
                       status=Image.Status.REVIEWED, reviewed_at=WHEN)
    make_box(image, "aws-logo", (120, 88, 310, 140))
    make_box(image, "smile-logo", (600, 402, 96, 97))
    return iteration


def url(name, *args):
    return reverse(f"projects:{name}", args=["logos", "v2", *args])


def test_iteration_page_shows_the_manifest_section(client, reviewer, iteration):
    client.force_login(reviewer)
    response = client.get(url("iteration"))
    content = response.content.decode()
    assert '<section class="manifest-section" id="manifest">' in content
    assert f'hx-get="{url("manifest-check")}"' in content


def test_check_shows_the_report_as_an_htmx_fragment(client, reviewer, iteration):
    client.force_login(reviewer)
    response = client.get(url("manifest-check"), headers={"HX-Request": "true"})
    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert "1 image · 2 boxes · 2 labels · 0 empty" in content
    assert "Rekognition will accept this manifest." in content
    assert f'<form method="post" action="{url("manifest-download")}"' in content
    # Reviewers may download but not publish.
    assert "Publish to S3" not in content


def test_check_is_a_full_page_without_htmx_and_offers_publish_to_owners(client, owner, iteration):
    client.force_login(owner)
    response = client.get(url("manifest-check"), {"no_empty": "on"})
    content = response.content.decode()
    assert "<html" in content
    assert f'<form method="post" action="{url("manifest-download")}"' in content
    assert f'action="{url("manifest-publish")}"' in content
    assert '<input type="hidden" name="no_empty" value="on">' in content


def test_check_lists_errors_and_offers_no_download(client, reviewer, iteration):
    iteration.images.get().boxes.all().delete()
    client.force_login(reviewer)
    content = client.get(url("manifest-check"), headers={"HX-Request": "true"}).content.decode()
    assert "Error: no label with boxes: Rekognition will not train" in content
    assert "labels with boxes: none" in content
    assert "Download manifest" not in content


def test_download_streams_the_exact_manifest_with_a_filename(client, reviewer, iteration):
    client.force_login(reviewer)
    response = client.post(url("manifest-download"))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/jsonlines; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="logos-v2.manifest"'
    body = b"".join(response.streaming_content).decode()
    expected = dict(SPEC_LINE)
    assert body == json.dumps(expected) + "\n"
    export = Export.objects.get()
    assert (export.kind, export.status, export.lines, export.uri, export.created_by) == (
        Export.Kind.DOWNLOAD, RunStatus.SUCCEEDED, 1, "logos-v2.manifest", reviewer)
    assert export.options == {"include_unreviewed": False, "include_empty": True}


def test_the_file_downloaded_is_the_one_validated(client, reviewer, iteration, monkeypatch):
    from projects.manifests import export as manifest

    real = manifest.iter_manifest_records
    passes = []

    def then_a_review_is_saved(**options):
        yield from real(**options)
        passes.append(options)
        if len(passes) > 1:
            return
        # A reviewer saves an image right after the export has been read from the database.
        image = make_image(iteration, source="s3://my-bucket/v2/late.jpg", status=Image.Status.REVIEWED,
                           reviewed_at=WHEN)
        make_box(image, "aws-logo", (1, 2, 30, 40))

    monkeypatch.setattr(manifest, "iter_manifest_records", then_a_review_is_saved)
    client.force_login(reviewer)
    response = client.post(url("manifest-download"))
    body = b"".join(response.streaming_content).decode()
    assert body == json.dumps(SPEC_LINE) + "\n"
    export = Export.objects.get()
    assert (export.lines, export.report["validation"]["lines"], export.report["validation"]["boxes"]) == (
        1, 1, 2)
    assert len(passes) == 1


def test_a_download_is_recorded_when_its_file_is_complete_and_the_file_goes_with_the_response(
        client, reviewer, iteration, monkeypatch):
    from projects.manifests import downloads
    from projects.manifests import views as manifest_views

    files = []

    def prepare(**options):
        export, file = downloads.download(**options)
        files.append(file)
        return export, file

    monkeypatch.setattr(manifest_views, "download", prepare)
    client.force_login(reviewer)
    response = client.post(url("manifest-download"))
    # Nothing has been sent yet, and the Export is already final: no "running" row if nobody reads.
    export = Export.objects.get()
    assert (export.status, export.lines, export.uri, export.error) == (
        RunStatus.SUCCEEDED, 1, "logos-v2.manifest", "")
    assert export.finished_at is not None
    assert response["Content-Length"] == str(len(json.dumps(SPEC_LINE)) + 1)
    assert response["Cache-Control"] == "no-store"
    assert not files[0].closed
    response.close()
    assert files[0].closed


def test_download_of_a_manifest_rekognition_would_refuse_is_not_sent(client, reviewer, iteration):
    iteration.images.get().boxes.all().delete()
    client.force_login(reviewer)
    response = client.post(url("manifest-download"))
    assert response.status_code == 409
    assert not response.streaming
    assert "the manifest breaks Rekognition&#x27;s rules (too-few-labels)" in response.content.decode()
    export = Export.objects.get()
    assert (export.status, export.report["validation"]["errors"][0]["code"]) == (
        RunStatus.FAILED, "too-few-labels")


def test_download_of_unpublished_local_images_explains_the_setting(client, reviewer, iteration):
    make_image(iteration, source="images/logos/v2/a.jpg", status=Image.Status.REVIEWED, no_objects=True)
    client.force_login(reviewer)
    response = client.post(url("manifest-download"))
    assert response.status_code == 409
    assert "Published images uri" in response.content.decode()


def test_invalid_options_are_rejected_by_the_form(client, owner, iteration):
    client.force_login(owner)
    response = client.post(url("manifest-publish"), {"test_fraction": "2"})
    assert response.status_code == 400
    assert "test_fraction" in response.content.decode()
    assert Export.objects.count() == 0


def test_non_members_get_404_everywhere(client, iteration):
    client.force_login(make_user("stranger"))
    export = Export.objects.create(iteration=iteration, kind=Export.Kind.S3)
    responses = [
        client.get(url("manifest-check")),
        client.post(url("manifest-download")),
        client.post(url("manifest-publish")),
        client.get(url("manifest-export", export.pk)),
    ]
    assert [response.status_code for response in responses] == [404, 404, 404, 404]


def test_reviewers_cannot_publish(client, reviewer, iteration):
    client.force_login(reviewer)
    assert client.post(url("manifest-publish")).status_code == 403
    assert Export.objects.count() == 0


def test_publish_without_an_output_location_says_what_to_set(client, owner, iteration):
    client.force_login(owner)
    response = client.post(url("manifest-publish"), headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "has no output location: set &#x27;Output location&#x27;" in response.content.decode()
    assert Export.objects.count() == 0


def test_publish_writes_the_manifest_to_s3_and_shows_its_uri(client, owner, iteration, s3):
    s3.create_bucket(Bucket="out-bucket")
    project = iteration.project
    project.output_location = "s3://out-bucket/manifests/"
    project.save()
    client.force_login(owner)
    response = client.post(url("manifest-publish"), headers={"HX-Request": "true"})
    export = Export.objects.get()
    assert (export.kind, export.status, export.lines, export.created_by) == (
        Export.Kind.S3, RunStatus.SUCCEEDED, 1, owner)
    assert export.uri.startswith("s3://out-bucket/manifests/logos-v2-")
    assert export.uri.endswith(".manifest")
    assert f'<code data-testid="export-uri">{export.uri}</code>' in response.content.decode()
    key = export.uri[len("s3://out-bucket/"):]
    stored = s3.get_object(Bucket="out-bucket", Key=key)
    assert stored["Body"].read().decode() == json.dumps(SPEC_LINE) + "\n"
    assert stored["ContentType"] == "application/jsonlines"
    page = client.get(url("manifest-export", export.pk))
    assert export.uri in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_publish_goes_through_the_database_worker(owner, iteration, s3, database_tasks):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from projects.manifests.tasks import start_publish

    s3.create_bucket(Bucket="out-bucket")
    iteration.project.output_location = "s3://out-bucket/manifests/"
    iteration.project.save()
    export = start_publish(iteration=iteration, user=owner)
    assert (export.status, export.uri) == (RunStatus.QUEUED, "")

    database_tasks()

    export.refresh_from_db()
    assert (export.kind, export.status, export.lines, export.error) == (
        Export.Kind.S3, RunStatus.SUCCEEDED, 1, "")
    assert export.started_at <= export.heartbeat_at <= export.finished_at
    assert DBTaskResult.objects.get(pk=export.task_id).status == TaskResultStatus.SUCCESSFUL
    stored = s3.get_object(Bucket="out-bucket", Key=export.uri[len("s3://out-bucket/"):])
    assert stored["Body"].read().decode() == json.dumps(SPEC_LINE) + "\n"


def test_publish_with_a_split_writes_train_and_test_manifests(client, owner, iteration, s3):
    s3.create_bucket(Bucket="out-bucket")
    project = iteration.project
    project.output_location = "s3://out-bucket"
    project.save()
    for number in range(1, 20):
        image = make_image(iteration, source=f"s3://my-bucket/v2/{number}.jpg", status=Image.Status.REVIEWED,
                           reviewed_at=WHEN)
        make_box(image, "aws-logo" if number % 2 else "smile-logo", (1, 2, 30, 40))
    client.force_login(owner)
    client.post(url("manifest-publish"), {"test_fraction": "0.25"})
    export = Export.objects.get()
    assert export.status == RunStatus.SUCCEEDED
    files = export.report["files"]
    assert [file["role"] for file in files] == ["train", "test"]
    assert files[0]["lines"] + files[1]["lines"] == 20
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket="out-bucket")["Contents"]]
    assert sorted(keys) == sorted(file["uri"][len("s3://out-bucket/"):] for file in files)
    assert files[0]["uri"].endswith("-train.manifest")
    assert files[1]["uri"].endswith("-test.manifest")


def test_a_failed_publish_is_recorded_and_leaves_no_object(client, owner, iteration, s3):
    project = iteration.project
    project.output_location = "s3://missing-bucket/manifests/"
    project.save()
    client.force_login(owner)
    response = client.post(url("manifest-publish"))
    export = Export.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("manifest-export", export.pk)
    assert export.status == RunStatus.FAILED
    assert export.error.startswith(
        "publishing to s3://missing-bucket/manifests/ failed: bucket does not exist")
    assert export.uri == ""


def test_two_publishes_in_the_same_second_keep_both_files(owner, iteration, s3, monkeypatch):
    from projects.manifests import publish as manifest_publish

    s3.create_bucket(Bucket="out-bucket")
    iteration.project.output_location = "s3://out-bucket/manifests/"
    iteration.project.save()
    monkeypatch.setattr(manifest_publish.timezone, "now", lambda: WHEN)
    first = manifest_publish.publish_to_s3(iteration=iteration, user=owner)
    second = manifest_publish.publish_to_s3(iteration=iteration, user=owner)
    assert (first.uri, second.uri) == (
        f"s3://out-bucket/manifests/logos-v2-20261128T101503Z-export{first.pk}.manifest",
        f"s3://out-bucket/manifests/logos-v2-20261128T101503Z-export{second.pk}.manifest",
    )
    keys = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket="out-bucket")["Contents"])
    assert keys == sorted(export.uri[len("s3://out-bucket/"):] for export in (first, second))


def test_the_export_page_shows_the_split_and_its_notes(client, owner, iteration):
    note = "label 'rare-logo' has one image only, so it is in one of the two sets only"
    export = Export.objects.create(
        iteration=iteration, kind=Export.Kind.S3, status=RunStatus.SUCCEEDED, uri="s3://out/t.manifest",
        lines=3, report={"validation": None, "files": [],
                         "split": {"train": 2, "test": 1, "moved": 1, "notes": [note]}},
    )
    client.force_login(owner)
    content = client.get(url("manifest-export", export.pk)).content.decode()
    assert ('<p class="counts" data-testid="export-split">Split: 2 training and 1 test images, 1 moved '
            "so that labels appear in both.</p>") in content
    assert "<p class=\"counts\">Note: label &#x27;rare-logo&#x27; has one image only, so it is in one of " \
        "the two sets only</p>" in content


def test_publish_refuses_an_output_bucket_of_another_owner(owner, iteration, s3, monkeypatch):
    from projects.aws import s3 as s3_module
    from projects.manifests.export import ManifestError
    from projects.manifests.publish import publish_to_s3

    s3.create_bucket(Bucket="out-bucket")
    iteration.project.output_location = "s3://out-bucket/m/"
    iteration.project.save()
    owners = {"my-bucket": "account-a", "out-bucket": "account-b"}
    monkeypatch.setattr(s3_module, "bucket_owner", lambda bucket, region=None: owners[bucket])
    with pytest.raises(ManifestError, match="bucket my-bucket and the output bucket out-bucket have"):
        publish_to_s3(iteration=iteration, user=owner)
    assert "Contents" not in s3.list_objects_v2(Bucket="out-bucket")
    assert Export.objects.get().status == RunStatus.FAILED


def test_a_running_publish_page_polls_until_done(client, owner, iteration):
    export = Export.objects.create(iteration=iteration, kind=Export.Kind.S3, status=RunStatus.RUNNING)
    client.force_login(owner)
    running = client.get(url("manifest-export", export.pk), headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in running
    assert 'hx-trigger="load delay:2s"' in running
    assert '<strong data-testid="export-status">Running</strong>' in running
    export.status = RunStatus.SUCCEEDED
    export.uri = "s3://out/m.manifest"
    export.lines = 1
    export.report = {"validation": None, "files": [{"uri": export.uri, "lines": 1, "role": "manifest",
                                                     "validation": {}}]}
    export.save()
    done = client.get(url("manifest-export", export.pk), headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in done
    assert '<code data-testid="export-uri">s3://out/m.manifest</code> (1 lines)' in done


def test_exports_of_another_iteration_are_not_found(client, owner, iteration):
    other = make_iteration(iteration.project, "v3")
    export = Export.objects.create(iteration=other, kind=Export.Kind.S3)
    client.force_login(owner)
    assert client.get(url("manifest-export", export.pk)).status_code == 404


def test_downloads_are_one_line_on_the_iteration_page_not_rows_linking_to_a_status_page(client, reviewer,
                                                                                         iteration):
    # Issue 10, point 9: each download added a "Download" row whose link opened a status page.
    client.force_login(reviewer)
    for _ in range(3):
        b"".join(client.post(url("manifest-download")).streaming_content)
    published = Export.objects.create(iteration=iteration, kind=Export.Kind.S3, status=RunStatus.SUCCEEDED,
                                      uri="s3://out/v2.manifest", lines=1)
    content = client.get(url("iteration")).content.decode()
    downloads = Export.objects.filter(kind=Export.Kind.DOWNLOAD)
    assert downloads.count() == 3
    for export in downloads:
        assert url("manifest-export", export.pk) not in content
    assert f'<a href="{url("manifest-export", published.pk)}">Published to S3</a>' in content
    last = downloads.order_by("-created_at", "-id").first().created_at
    assert (f'<p class="counts" data-testid="manifest-downloads">Downloaded 3 times, last on '
            f'{last:%Y-%m-%d %H:%M}.</p>') in content
