"""Issue 15, item 2: a decompression bomb is refused per file, and no stored file is left without
its row, from a folder, a browser upload and an S3 prefix alike."""

import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from projects.images.importing import import_folder
from projects.models import Image, ImportRun, RunStatus
from tests.factories import image_bytes, make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db

REASON = ("too many pixels to open safely (a possible decompression bomb); Rekognition accepts at "
          "most 4096x4096 px")


def bomb_png(width=14000, height=14000):
    """A tiny PNG whose header claims a 1-bit width x height image, as a hostile file would."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def stored(media_root):
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


def test_a_bomb_in_a_folder_is_refused_and_the_rest_is_imported(tmp_path, media_root):
    iteration = make_iteration()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(image_bytes(100, 100))
    (folder / "b.png").write_bytes(bomb_png())
    (folder / "c.jpg").write_bytes(image_bytes(120, 100))
    report = import_folder(iteration=iteration, folder=folder)
    assert report.rejected == [("b.png", REASON)]
    assert sorted(iteration.images.values_list("name", flat=True)) == ["a.jpg", "c.jpg"]
    prefix = f"images/{iteration.project.slug}/v1/"
    assert stored(media_root) == [prefix + "a.jpg", prefix + "c.jpg"]


def test_a_bomb_in_a_browser_upload_is_a_rejected_file_not_a_500(client, media_root):
    owner = make_user("olga")
    project = make_project("logos", owner=owner)
    iteration = make_iteration(project, "v2")
    client.force_login(owner)
    files = [SimpleUploadedFile("a.jpg", image_bytes(100, 100)), SimpleUploadedFile("b.png", bomb_png()),
             SimpleUploadedFile("c.jpg", image_bytes(120, 100))]
    response = client.post(reverse("projects:iteration-upload", args=["logos", "v2"]), {"files": files})
    assert response.status_code == 302
    run = ImportRun.objects.get()
    run.refresh_from_db()
    assert (run.status, run.imported, run.rejected) == (RunStatus.SUCCEEDED, 2, [["b.png", REASON]])
    assert Image.objects.filter(iteration=iteration).count() == 2
    prefix = "images/logos/v2/"
    assert stored(media_root) == [prefix + "a.jpg", prefix + "c.jpg"]


def test_a_bomb_in_an_s3_prefix_is_refused_per_file(s3):
    iteration = make_iteration(make_project("logos"), "v2")
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="v2/a.jpg", Body=image_bytes(100, 100))
    s3.put_object(Bucket="photos", Key="v2/b.png", Body=bomb_png())
    from projects.images.importing import import_s3_prefix

    report = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")
    assert report.rejected == [("v2/b.png", REASON)]
    assert list(iteration.images.values_list("source", flat=True)) == ["s3://photos/v2/a.jpg"]
