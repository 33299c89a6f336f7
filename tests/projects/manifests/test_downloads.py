import io
import json
import os
import time

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from projects.manifests import export as manifest
from projects.manifests.export import write_manifest
from projects.models import Export, Image, RunStatus
from tests.factories import make_box, make_image, make_iteration, make_project
from tests.projects.manifests.test_export import SPEC_LINE
from tests.projects.manifests.test_views import WHEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def iteration(owner, reviewer):
    project = make_project("logos", owner=owner, reviewer=reviewer)
    iteration = make_iteration(project, "v2")
    image = make_image(iteration, source="s3://my-bucket/v2/train/img-0007.jpg",
                       status=Image.Status.REVIEWED, reviewed_at=WHEN)
    make_box(image, "aws-logo", (120, 88, 310, 140))
    make_box(image, "smile-logo", (600, 402, 96, 97))
    return iteration


@pytest.fixture
def passes(monkeypatch):
    """Every pass of the exporter over the iteration's images."""
    real = manifest.iter_manifest_records
    seen = []

    def counted(**options):
        seen.append(options)
        yield from real(**options)

    monkeypatch.setattr(manifest, "iter_manifest_records", counted)
    return seen


def url(name):
    return reverse(f"projects:{name}", args=["logos", "v2"])


def check_then_download(client, options=None, download_options=None):
    check = client.get(url("manifest-check"), options or {}, headers={"HX-Request": "true"})
    assert check.status_code == 200
    response = client.post(url("manifest-download"), download_options or options or {})
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def fresh_export(iteration, **options):
    out = io.StringIO()
    write_manifest(iteration=iteration, out=out, **options)
    return out.getvalue()


def test_check_then_download_exports_once_and_sends_what_a_fresh_export_writes(
        client, reviewer, iteration, passes):
    client.force_login(reviewer)
    body = check_then_download(client)
    assert len(passes) == 1
    assert body == json.dumps(SPEC_LINE) + "\n"
    assert body == fresh_export(iteration)
    export = Export.objects.get()
    assert (export.kind, export.status, export.lines, export.uri, export.created_by) == (
        Export.Kind.DOWNLOAD, RunStatus.SUCCEEDED, 1, "logos-v2.manifest", reviewer)
    assert export.options == {"include_unreviewed": False, "include_empty": True}
    assert (export.report["validation"]["lines"], export.report["validation"]["boxes"]) == (1, 2)


def test_a_second_download_of_the_same_state_sends_the_checked_file_again(
        client, reviewer, iteration, passes):
    client.force_login(reviewer)
    first = check_then_download(client)
    again = b"".join(client.post(url("manifest-download")).streaming_content).decode()
    assert again == first
    assert len(passes) == 1
    assert Export.objects.count() == 2


def test_a_review_saved_after_the_check_is_in_the_download(client, reviewer, iteration, passes):
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    image = make_image(iteration, source="s3://my-bucket/v2/late.jpg", status=Image.Status.PENDING)
    Image.objects.filter(pk=image.pk).update(status=Image.Status.REVIEWED, reviewed_at=WHEN, version=1)
    make_box(image, "aws-logo", (1, 2, 30, 40))
    body = b"".join(client.post(url("manifest-download")).streaming_content).decode()
    assert len(passes) == 2
    assert body == fresh_export(iteration)
    assert len(body.splitlines()) == 2


def test_a_second_review_of_the_same_image_after_the_check_is_in_the_download(
        client, reviewer, iteration, passes):
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    image = iteration.images.get()
    image.boxes.filter(label__name="smile-logo").delete()
    # Saving a review always moves the image's version (reviewer.editor.reviews._take_version).
    Image.objects.filter(pk=image.pk).update(version=image.version + 1)
    body = b"".join(client.post(url("manifest-download")).streaming_content).decode()
    assert len(passes) == 2
    assert body == fresh_export(iteration)
    assert '"class_id": 1' not in body


def test_a_renamed_label_after_the_check_is_in_the_download(client, reviewer, iteration, passes):
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    iteration.project.labels.filter(name="smile-logo").update(name="grin-logo")
    body = b"".join(client.post(url("manifest-download")).streaming_content).decode()
    assert len(passes) == 2
    assert '"1": "grin-logo"' in body


def test_new_published_images_uri_after_the_check_is_in_the_download(client, reviewer, iteration, passes):
    local = make_image(iteration, source="images/logos/v2/a.jpg", status=Image.Status.REVIEWED,
                       reviewed_at=WHEN)
    make_box(local, "aws-logo", (1, 2, 30, 40))
    iteration.project.published_images_uri = "s3://my-bucket/old/"
    iteration.project.save()
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    iteration.project.published_images_uri = "s3://my-bucket/new/"
    iteration.project.save()
    body = b"".join(client.post(url("manifest-download")).streaming_content).decode()
    assert len(passes) == 2
    assert '"source-ref": "s3://my-bucket/new/a.jpg"' in body


def test_a_download_with_other_options_than_the_check_exports_again(client, reviewer, iteration, passes):
    empty = make_image(iteration, status=Image.Status.REVIEWED, reviewed_at=WHEN, no_objects=True)
    client.force_login(reviewer)
    body = check_then_download(client, {}, {"no_empty": "on"})
    assert len(passes) == 2
    assert body == fresh_export(iteration, include_empty=False)
    assert empty.source not in body


def test_a_refused_manifest_is_not_kept_and_its_download_is_refused(client, reviewer, iteration, passes):
    iteration.images.get().boxes.all().delete()
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    response = client.post(url("manifest-download"))
    assert response.status_code == 409
    assert len(passes) == 2
    assert Export.objects.get().status == RunStatus.FAILED


def test_a_new_check_replaces_the_kept_file_of_an_older_state(client, reviewer, iteration):
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    make_image(iteration, status=Image.Status.REVIEWED, reviewed_at=WHEN, no_objects=True)
    client.get(url("manifest-check"))
    _folders, files = default_storage.listdir(f"manifests/checked/{iteration.pk}")
    assert len(files) == 2  # one manifest and its facts


def test_a_get_download_writes_nothing_even_after_a_check(client, reviewer, iteration, passes):
    client.force_login(reviewer)
    client.get(url("manifest-check"))
    assert client.get(url("manifest-download")).status_code == 405
    assert Export.objects.count() == 0
    assert len(passes) == 1


def test_a_checked_file_older_than_its_limit_is_not_sent(client, reviewer, iteration, passes):
    from projects.manifests.downloads import MAX_AGE

    client.force_login(reviewer)
    client.get(url("manifest-check"))
    folder = f"manifests/checked/{iteration.pk}"
    old = time.time() - MAX_AGE.total_seconds() - 60
    for name in default_storage.listdir(folder)[1]:
        os.utime(default_storage.path(f"{folder}/{name}"), (old, old))
    body = b"".join(client.post(url("manifest-download")).streaming_content).decode()
    assert len(passes) == 2
    assert body == fresh_export(iteration)
