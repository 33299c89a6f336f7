import pytest

from projects.aws import s3 as s3_module
from projects.images.importing import (
    ImportSourceError,
    import_files,
    import_folder,
    import_s3_prefix,
    run_import,
    stage_upload,
)
from projects.images.tasks import start_upload
from projects.models import Image, ImportRun, RunStatus
from tests.factories import image_bytes, make_iteration

pytestmark = pytest.mark.django_db

SIXTEEN_MB = 16_000_000


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
        ("heavy.jpg", "file is 16.0 MB; Rekognition accepts at most 15 MB (15,000,000 bytes)"),
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
    assert rejected["v2/z-huge.jpg"] == (
        "file is 16.0 MB; Rekognition accepts at most 15 MB (15,000,000 bytes)")
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


def test_s3_import_works_through_the_listing_batch_by_batch(s3, monkeypatch):
    from projects.images import importing as imports

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    listed, listed_at_first_read, asked = [], [], []
    real_iter, real_read, real_known = s3_module.iter_objects, s3_module.read_range, imports._Batch.known

    def counting_iter(*args, **kwargs):
        for item in real_iter(*args, **kwargs):
            listed.append(item[0])
            yield item

    def reading(bucket, key, length, **kwargs):
        if not listed_at_first_read:
            listed_at_first_read.append(len(listed))
        return real_read(bucket, key, length, **kwargs)

    def known(self, sources):
        sources = list(sources)
        asked.append(len(sources))
        return real_known(self, sources)

    monkeypatch.setattr(s3_module, "iter_objects", counting_iter)
    monkeypatch.setattr(s3_module, "read_range", reading)
    monkeypatch.setattr(imports._Batch, "known", known)
    s3.create_bucket(Bucket="photos")
    for name in ("a.jpg", "b.jpg", "c.txt", "d.jpg", "e.jpg"):
        put(s3, f"v2/{name}", image_bytes(100, 100) if name.endswith(".jpg") else b"x")
    iteration = make_iteration()
    seen = []

    report = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/",
                              progress=lambda done, total: seen.append((done, total)))

    assert (report.imported, report.duplicates, report.rejected) == (
        4, 0, [("v2/c.txt", "not a .jpg, .jpeg or .png file")]
    )
    # The first headers were read when only the first batch had been listed, not the whole prefix.
    assert listed_at_first_read == [2]
    assert asked == [2, 1, 1]
    assert seen == [(2, 2), (4, 4), (5, 5)]
    assert list(iteration.images.order_by("position").values_list("name", "position")) == [
        ("a.jpg", 0), ("b.jpg", 1), ("d.jpg", 2), ("e.jpg", 3),
    ]


def test_s3_headers_are_read_concurrently(s3, monkeypatch):
    import threading

    # Each read waits until three are in flight: reading one header after the other would time out.
    barrier = threading.Barrier(3, timeout=10)
    real_read = s3_module.read_range

    def together(bucket, key, length, **kwargs):
        barrier.wait()
        return real_read(bucket, key, length, **kwargs)

    monkeypatch.setattr(s3_module, "read_range", together)
    s3.create_bucket(Bucket="photos")
    for name in ("a.jpg", "b.png", "c.jpg"):
        put(s3, f"v2/{name}", image_bytes(100, 100, "PNG" if name.endswith(".png") else "JPEG"))
    iteration = make_iteration()

    report = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")

    assert (report.imported, report.rejected) == (3, [])
    assert list(iteration.images.order_by("position").values_list("name", "format")) == [
        ("a.jpg", "JPEG"), ("b.png", "PNG"), ("c.jpg", "JPEG"),
    ]


def test_known_sources_are_asked_at_most_500_at_a_time():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from projects.images.importing import ImportReport, _Batch

    iteration = make_iteration()
    Image.objects.create(iteration=iteration, source="s3://photos/v2/1200.jpg", width=64, height=64)
    batch = _Batch(iteration, ImportReport())
    with CaptureQueriesContext(connection) as queries:
        found = batch.known(f"s3://photos/v2/{number}.jpg" for number in range(1201))
    assert found == {"s3://photos/v2/1200.jpg"}
    # 1201 sources: three queries of 500, 500 and 201 (SQLite refuses more than 32766 variables).
    assert [query["sql"].count("s3://photos/v2/") for query in queries] == [500, 500, 201]


def test_rows_another_import_created_meanwhile_count_as_duplicates(s3, monkeypatch):
    from projects.images import importing as imports

    real_known = imports._Batch.known

    def known_then_raced(self, sources):
        found = real_known(self, sources)
        # Another worker importing the same prefix commits a.jpg right after this check.
        Image.objects.get_or_create(iteration=self.iteration, source="s3://photos/v2/a.jpg",
                                    defaults={"name": "a.jpg", "width": 100, "height": 100})
        return found

    monkeypatch.setattr(imports._Batch, "known", known_then_raced)
    s3.create_bucket(Bucket="photos")
    put(s3, "v2/a.jpg", image_bytes(100, 100))
    put(s3, "v2/b.jpg", image_bytes(100, 100))
    iteration = make_iteration()

    report = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")

    assert (report.imported, report.duplicates, report.rejected) == (1, 1, [])
    assert sorted(iteration.images.values_list("source", flat=True)) == [
        "s3://photos/v2/a.jpg", "s3://photos/v2/b.jpg",
    ]


def test_imported_files_are_stored_under_the_manifests_storage_prefix(tmp_path, monkeypatch):
    from projects.manifests import export as manifest

    monkeypatch.setattr(manifest, "storage_prefix", lambda iteration: f"elsewhere/{iteration.name}/")
    iteration = make_iteration()
    path = tmp_path / "x.jpg"
    path.write_bytes(image_bytes(640, 480))

    report = import_files(iteration=iteration, files=[("x.jpg", path)])

    assert report.imported == 1
    assert iteration.images.get().source == "elsewhere/v1/x.jpg"


# --- browser uploads: staged, then imported by an ImportRun -----------------------------------------


def uploads(*names):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [(name, SimpleUploadedFile(name, image_bytes(100, 100) if name.endswith(".jpg") else b"x"))
            for name in names]


def files_under(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_an_upload_is_staged_then_imported_by_its_run_which_deletes_the_staged_files(media_root):
    iteration = make_iteration()
    run = stage_upload(iteration=iteration, files=uploads("a.jpg", "notes.txt"))
    assert (run.status, run.source) == (RunStatus.QUEUED, "upload of 2 files")
    assert [name for name, _ in run.staged_files] == ["a.jpg", "notes.txt"]
    assert files_under(media_root) == [f"staging/uploads/{run.pk}/00000", f"staging/uploads/{run.pk}/00001"]

    run_import(run=run)

    run.refresh_from_db()
    assert (run.status, run.imported, run.duplicates, run.rejected_count, run.rejected, run.staged_files) == (
        RunStatus.SUCCEEDED, 1, 0, 1, [["notes.txt", "not a .jpg, .jpeg or .png file"]], [])
    prefix = f"images/{iteration.project.slug}/v1/"
    assert files_under(media_root) == [prefix + "a.jpg"]
    again = run_import(run=stage_upload(iteration=iteration, files=uploads("a.jpg")))
    assert (again.source, again.imported, again.duplicates) == ("upload of 1 file", 0, 1)
    assert files_under(media_root) == [prefix + "a.jpg"]


def test_an_upload_beats_for_every_file_it_stages_and_imports(monkeypatch):
    from projects import runs

    beats = []
    monkeypatch.setattr(runs, "heartbeat", lambda run, **fields: beats.append(run.pk))
    run = stage_upload(iteration=make_iteration(), files=uploads("a.jpg", "b.jpg", "notes.txt"))
    assert beats == [run.pk] * 3
    run_import(run=run)
    assert beats == [run.pk] * 6


def test_an_upload_failing_part_way_reports_what_it_imported_and_leaves_no_file_without_its_row(
        media_root, monkeypatch):
    from projects.images import importing

    iteration = make_iteration()
    run = stage_upload(iteration=iteration, files=uploads("a.jpg", "b.jpg", "c.jpg", "d.jpg"))
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    real_store = importing._store

    def store(name, handle):
        if name.endswith("d.jpg"):
            raise OSError("No space left on device")
        return real_store(name, handle)

    monkeypatch.setattr(importing, "_store", store)
    with pytest.raises(OSError):
        run_import(run=run)

    run.refresh_from_db()
    assert (run.status, run.error, run.imported, run.staged_files) == (
        RunStatus.FAILED, "OSError: No space left on device", 2, [])
    prefix = f"images/{iteration.project.slug}/v1/"
    # a and b were written as a batch; c was stored but its row was not: its file is gone again.
    assert list(iteration.images.order_by("position").values_list("source", flat=True)) == [
        prefix + "a.jpg", prefix + "b.jpg"]
    assert files_under(media_root) == [prefix + "a.jpg", prefix + "b.jpg"]


def test_a_killed_upload_import_still_says_how_far_it_got(monkeypatch):
    from datetime import timedelta

    from projects import runs
    from projects.images import importing

    run = stage_upload(iteration=make_iteration(), files=uploads("a.jpg", "b.jpg", "c.jpg"))
    monkeypatch.setattr(importing, "BATCH_SIZE", 1)
    monkeypatch.setattr(runs, "HEARTBEAT_EVERY", timedelta(0))
    real_store = importing._store

    def store(name, handle):
        if name.endswith("c.jpg"):
            raise KeyboardInterrupt  # the worker is stopped here
        return real_store(name, handle)

    monkeypatch.setattr(importing, "_store", store)
    with pytest.raises(KeyboardInterrupt):
        run_import(run=run)

    assert ImportRun.objects.values_list("status", "imported").get() == (RunStatus.RUNNING, 2)
    runs.reconcile(stale_after=0)
    assert ImportRun.objects.values_list("status", "imported").get() == (RunStatus.FAILED, 2)


def test_an_upload_the_storage_refuses_says_what_to_do_and_stages_nothing(
        client, owner, media_root, monkeypatch):
    from django.core.files.storage import default_storage
    from django.urls import reverse

    from tests.factories import make_project

    make_iteration(make_project("logos", owner=owner), "v1")
    real_save = default_storage.save

    def save(name, content, **kwargs):
        if name.endswith("00001"):
            raise OSError("No space left on device")
        return real_save(name, content, **kwargs)

    monkeypatch.setattr(default_storage, "save", save)
    client.force_login(owner)
    files = [upload for _, upload in uploads("a.jpg", "b.jpg")]
    page = client.post(reverse("projects:iteration-upload", args=["logos", "v1"]), {"files": files},
                       follow=True)
    message = ("the uploaded files could not be stored (No space left on device): upload them again, "
               "or ask the administrator to check Loupe's storage")
    assert [str(m) for m in page.context["messages"]] == [message]
    run = ImportRun.objects.get()
    assert (run.status, run.error, run.staged_files) == (RunStatus.FAILED, message, [])
    assert files_under(media_root) == []


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_imported_through_the_database_worker(database_tasks, media_root):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    iteration = make_iteration()
    run = start_upload(iteration=iteration, files=uploads("a.jpg", "notes.txt"))
    assert (run.status, len(files_under(media_root / "staging"))) == (RunStatus.QUEUED, 2)

    database_tasks()

    run.refresh_from_db()
    assert (run.status, run.imported, run.rejected_count, run.error) == (RunStatus.SUCCEEDED, 1, 1, "")
    assert DBTaskResult.objects.get(pk=run.task_id).status == TaskResultStatus.SUCCESSFUL
    assert list(iteration.images.values_list("name", flat=True)) == ["a.jpg"]
    assert files_under(media_root) == [f"images/{iteration.project.slug}/v1/a.jpg"]
