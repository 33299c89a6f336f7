import pytest

from projects import s3 as s3_module
from projects.imports import ImportSourceError, import_files, import_folder, import_s3_prefix
from projects.models import Image
from tests.factories import image_bytes, make_iteration

pytestmark = pytest.mark.django_db

SIXTEEN_MB = 16 * 1024 * 1024


def write_folder(folder):
    folder.mkdir()
    (folder / "a.jpg").write_bytes(image_bytes(128, 96))
    (folder / "sub").mkdir()
    (folder / "sub" / "b.png").write_bytes(image_bytes(100, 200, "PNG"))
    (folder / "notes.txt").write_text("hello")
    (folder / "fake.jpg").write_bytes(b"not really a jpeg")
    (folder / "tiny.jpg").write_bytes(image_bytes(32, 80))
    (folder / "wide.png").write_bytes(image_bytes(4097, 64, "PNG"))
    (folder / "heavy.jpg").write_bytes(image_bytes(128, 128) + b"\0" * SIXTEEN_MB)
    (folder / "anim.png").write_bytes(image_bytes(100, 100, "GIF"))


def test_folder_import_takes_images_and_reports_every_rejected_file(tmp_path):
    iteration = make_iteration()
    write_folder(tmp_path / "in")
    report = import_folder(iteration=iteration, folder=tmp_path / "in")
    assert report.imported == 2
    assert report.duplicates == 0
    assert sorted(report.rejected) == [
        ("anim.png", "format GIF is not accepted by Rekognition (use JPEG or PNG)"),
        ("fake.jpg", "not an image Pillow can read"),
        ("heavy.jpg", "file is 16.0 MB; Rekognition accepts at most 15 MB"),
        ("notes.txt", "not a .jpg, .jpeg or .png file"),
        ("tiny.jpg", "width 32 px is below Rekognition's minimum of 64 px"),
        ("wide.png", "width 4097 px is above Rekognition's maximum of 4096 px"),
    ]
    images = list(iteration.images.order_by("position").values_list(
        "name", "source", "width", "height", "format", "depth"))
    prefix = f"images/{iteration.project.slug}/v1/"
    assert images == [
        ("a.jpg", prefix + "a.jpg", 128, 96, "JPEG", 3),
        ("b.png", prefix + "sub/b.png", 100, 200, "PNG", 3),
    ]


def test_folder_reimport_is_idempotent(tmp_path):
    iteration = make_iteration()
    write_folder(tmp_path / "in")
    import_folder(iteration=iteration, folder=tmp_path / "in")
    (tmp_path / "in" / "c.jpg").write_bytes(image_bytes(64, 64))
    again = import_folder(iteration=iteration, folder=tmp_path / "in")
    assert (again.imported, again.duplicates, len(again.rejected)) == (1, 2, 6)
    assert iteration.images.count() == 3
    assert list(iteration.images.order_by("position").values_list("position", flat=True)) == [0, 1, 2]


def test_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(ImportSourceError, match="is not a folder"):
        import_folder(iteration=make_iteration(), folder=tmp_path / "nope")


def test_uploaded_files_import(tmp_path):
    iteration = make_iteration()
    path = tmp_path / "x.jpg"
    path.write_bytes(image_bytes(640, 480))
    with open(path, "rb") as handle:
        report = import_files(iteration=iteration, files=[("x.jpg", handle)])
    assert report.summary() == "1 imported, 0 skipped as duplicates, 0 rejected"
    assert iteration.images.get().width == 640


def put(s3, key, body):
    s3.put_object(Bucket="photos", Key=key, Body=body)


def test_s3_import_pages_past_1000_keys_and_reads_only_headers(s3, monkeypatch):
    reads = []
    real_read_range = s3_module.read_range

    def recording_read_range(bucket, key, length, **kwargs):
        reads.append((key, length))
        return real_read_range(bucket, key, length, **kwargs)

    monkeypatch.setattr(s3_module, "read_range", recording_read_range)
    s3.create_bucket(Bucket="photos")
    for number in range(1001):
        put(s3, f"v2/a-{number:04d}.txt", b"x")
    put(s3, "v2/z-good.jpg", image_bytes(800, 600))
    put(s3, "v2/z-good.png", image_bytes(300, 200, "PNG"))
    put(s3, "v2/z-small.jpg", image_bytes(63, 100))
    put(s3, "v2/z-huge.jpg", image_bytes(100, 100) + b"\0" * SIXTEEN_MB)
    put(s3, "v2/z-broken.jpg", b"\xff\xd8\xff garbage")
    put(s3, "other/z-elsewhere.jpg", image_bytes(100, 100))
    iteration = make_iteration()

    report = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")

    assert report.imported == 2
    rejected = dict(report.rejected)
    assert len(rejected) == 1004
    assert rejected["v2/a-1000.txt"] == "not a .jpg, .jpeg or .png file"
    assert rejected["v2/z-small.jpg"] == "width 63 px is below Rekognition's minimum of 64 px"
    assert rejected["v2/z-huge.jpg"] == "file is 16.0 MB; Rekognition accepts at most 15 MB"
    assert rejected["v2/z-broken.jpg"] == "not an image Pillow can read"
    # The 16 MB image was judged by its listed size after one 64 KB header read.
    assert sorted(reads) == [(f"v2/z-{name}", 65536) for name in
                             ("broken.jpg", "good.jpg", "good.png", "huge.jpg", "small.jpg")]
    assert sorted(iteration.images.values_list("source", "width", "height")) == [
        ("s3://photos/v2/z-good.jpg", 800, 600),
        ("s3://photos/v2/z-good.png", 300, 200),
    ]


def test_s3_reimport_skips_duplicates(s3):
    s3.create_bucket(Bucket="photos")
    put(s3, "v2/a.jpg", image_bytes(100, 100))
    iteration = make_iteration()
    import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")
    put(s3, "v2/b.jpg", image_bytes(100, 100))
    again = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")
    assert (again.imported, again.duplicates, again.rejected) == (1, 1, [])
    assert Image.objects.count() == 2


def test_s3_missing_bucket_is_a_source_error(s3):
    with pytest.raises(ImportSourceError, match="cannot list s3://missing/v2/: bucket does not exist"):
        import_s3_prefix(iteration=make_iteration(), uri="s3://missing/v2/")
