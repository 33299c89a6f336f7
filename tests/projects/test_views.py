import pytest
from django.urls import reverse

from projects.models import Image
from tests.factories import make_image, make_iteration, make_model_version, make_project, make_user

pytestmark = pytest.mark.django_db


def test_every_page_requires_login(client):
    response = client.get(reverse("projects:list"))
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_login_page_is_served(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in to Loupe" in response.content


def test_project_list_shows_only_member_projects(client, reviewer):
    mine = make_project("mine", reviewer=reviewer, name="Mine")
    make_project("theirs", name="Theirs")
    client.force_login(reviewer)
    response = client.get(reverse("projects:list"))
    assert [p.slug for p in response.context["projects"]] == [mine.slug]


def test_superusers_see_every_project(client):
    make_project("a")
    make_project("b")
    client.force_login(make_user(superuser=True))
    response = client.get(reverse("projects:list"))
    assert [p.slug for p in response.context["projects"]] == ["a", "b"]


def test_staff_status_alone_grants_nothing_in_other_projects(client):
    staff = make_user(staff=True)
    make_project("a", reviewer=staff)
    make_project("b")
    client.force_login(staff)
    response = client.get(reverse("projects:list"))
    assert [p.slug for p in response.context["projects"]] == ["a"]
    assert client.get(reverse("projects:detail", args=["b"])).status_code == 404
    assert client.get(reverse("projects:settings", args=["a"])).status_code == 403


def test_reviewer_of_a_gets_404_for_everything_of_b(client, reviewer):
    make_project("a", reviewer=reviewer)
    b = make_project("b")
    iteration = make_iteration(b, "v1")
    image = make_image(iteration)
    client.force_login(reviewer)
    urls = [
        reverse("projects:detail", args=["b"]),
        reverse("projects:settings", args=["b"]),
        reverse("projects:iteration", args=["b", "v1"]),
        reverse("projects:image-file", args=[image.pk]),
        reverse("projects:iteration-import-runs", args=["b", "v1"]),
    ]
    assert [client.get(url).status_code for url in urls] == [404, 404, 404, 404, 404]
    response = client.post(reverse("projects:iteration-create", args=["b"]), {"name": "v2"})
    assert response.status_code == 404


def test_reviewer_cannot_change_settings_of_own_project(client, reviewer):
    make_project("a", reviewer=reviewer)
    client.force_login(reviewer)
    assert client.get(reverse("projects:settings", args=["a"])).status_code == 403


def test_owner_uploads_images_and_sees_the_report(client, owner, media_root):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import image_bytes

    iteration = make_iteration(make_project("logos", owner=owner), "v1")
    client.force_login(owner)
    files = [
        SimpleUploadedFile("a.jpg", image_bytes(100, 100), "image/jpeg"),
        SimpleUploadedFile("b.txt", b"hello", "text/plain"),
    ]
    response = client.post(
        reverse("projects:iteration-upload", args=["logos", "v1"]), {"files": files}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Importing the upload of 2 files in the background: its progress is shown below.",
    ]
    page = response.content.decode()
    assert ("<strong>upload of 2 files</strong>: Succeeded: 1 imported, 0 skipped as duplicates, "
            "1 rejected") in page
    assert "<li><code>b.txt</code>: not a .jpg, .jpeg or .png file</li>" in page
    assert list(iteration.images.values_list("name", flat=True)) == ["a.jpg"]
    # The staged copies are gone once imported.
    assert [p.name for p in (media_root / "staging" / "uploads").rglob("*") if p.is_file()] == []


def test_reviewer_cannot_upload(client, reviewer):
    make_iteration(make_project("logos", reviewer=reviewer), "v1")
    client.force_login(reviewer)
    response = client.post(reverse("projects:iteration-upload", args=["logos", "v1"]), {})
    assert response.status_code == 403


def test_s3_import_form_runs_the_import_task(client, owner, s3):
    from tests.factories import image_bytes

    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="v1/a.jpg", Body=image_bytes(100, 100))
    iteration = make_iteration(make_project("logos", owner=owner, image_bucket="photos"), "v1")
    client.force_login(owner)
    url = reverse("projects:iteration-import-s3", args=["logos", "v1"])
    bad = client.post(url, {"source": "photos/v1"}, follow=True)
    assert [str(m) for m in bad.context["messages"]] == [
        "Enter an S3 address like s3://bucket/prefix/."
    ]
    s3.put_object(Bucket="photos", Key="v1/notes.txt", Body=b"x")
    page = client.post(url, {"source": "s3://photos/v1/"}, follow=True)
    assert list(iteration.images.values_list("source", flat=True)) == ["s3://photos/v1/a.jpg"]
    run = iteration.import_runs.get()
    assert (run.status, run.imported, run.duplicates, run.rejected_count, run.rejected, run.error) == (
        "succeeded", 1, 0, 1, [["v1/notes.txt", "not a .jpg, .jpeg or .png file"]], "")
    assert run.task_id != ""
    assert b"<strong>s3://photos/v1/</strong>: Succeeded: 1 imported, 0 skipped as duplicates, " \
           b"1 rejected" in page.content
    assert b"<li><code>v1/notes.txt</code>: not a .jpg, .jpeg or .png file</li>" in page.content


def test_a_failed_s3_import_says_why_on_the_iteration_page(client, owner, s3):
    make_iteration(make_project("logos", owner=owner, image_bucket="gone"), "v1")
    client.force_login(owner)
    page = client.post(reverse("projects:iteration-import-s3", args=["logos", "v1"]),
                       {"source": "s3://gone/v1/"}, follow=True)
    assert b'<p class="error">cannot list s3://gone/v1/: bucket does not exist' in page.content


def test_import_runs_partial_polls_only_while_an_import_is_under_way(client, owner, reviewer):
    from projects.models import ImportRun

    iteration = make_iteration(make_project("logos", owner=owner, reviewer=reviewer), "v1")
    ImportRun.objects.create(iteration=iteration, source="s3://photos/v1/")
    url = reverse("projects:iteration-import-runs", args=["logos", "v1"])
    client.force_login(owner)
    queued = client.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 2s"' in queued
    assert "<strong>s3://photos/v1/</strong>: Queued</p>" in queued
    ImportRun.objects.update(status="failed", error="access denied by S3")
    finished = client.get(url).content.decode()
    assert "hx-trigger" not in finished
    assert '<p class="error">access denied by S3</p>' in finished
    client.force_login(reviewer)
    assert client.get(url).status_code == 403


def test_a_failed_import_shows_what_it_imported_before_it_stopped(client, owner):
    from tests.factories import make_import_run

    iteration = make_iteration(make_project("logos", owner=owner), "v1")
    make_import_run(iteration, source="upload of 4 files", status="failed", imported=2,
                    error="OSError: No space left on device")
    client.force_login(owner)
    part = client.get(reverse("projects:iteration-import-runs", args=["logos", "v1"])).content.decode()
    assert ("<p><strong>upload of 4 files</strong>: Failed: 2 imported, 0 skipped as duplicates, "
            "0 rejected</p>") in part
    assert '<p class="error">OSError: No space left on device</p>' in part


@pytest.mark.parametrize("image_bucket, message", [
    ("", "Set the project's image bucket in Settings first; imports come from that bucket."),
    ("photos", "Import from the project's image bucket, s3://photos/."),
])
def test_s3_import_from_the_browser_only_reads_the_projects_own_bucket(client, owner, image_bucket,
                                                                       message):
    iteration = make_iteration(make_project("logos", owner=owner, image_bucket=image_bucket), "v1")
    client.force_login(owner)
    response = client.post(reverse("projects:iteration-import-s3", args=["logos", "v1"]),
                           {"source": "s3://loupe-storage/loupe/images/other/"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [message]
    assert iteration.images.count() == 0


def test_settings_refuse_bad_region_arn_and_loupes_own_bucket(client, owner, settings):
    settings.LOUPE_S3_BUCKET = "loupe-storage"
    project = make_project("logos", owner=owner)
    client.force_login(owner)
    response = client.post(reverse("projects:settings", args=["logos"]), {
        "name": "Logos", "region": "mars-1", "image_bucket": "loupe-storage",
        "output_location": "s3://out/", "published_images_uri": "", "review_order": "hardest",
        "rekognition_project_arn": "arn:aws:s3:::bucket",
    })
    errors = response.context["form"].errors
    assert errors == {
        "region": ["Enter an AWS region name such as us-east-1."],
        "image_bucket": ["That is Loupe's own storage bucket: choose another one."],
        "rekognition_project_arn": [
            "Enter a Rekognition project ARN: arn:aws:rekognition:REGION:ACCOUNT:project/NAME/NUMBER."
        ],
    }
    project.refresh_from_db()
    assert (project.region, project.image_bucket) == ("us-east-1", "")


def test_image_file_serves_local_bytes_to_members(client, reviewer):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from tests.factories import image_bytes

    iteration = make_iteration(make_project("logos", reviewer=reviewer), "v1")
    name = default_storage.save("images/logos/v1/a.jpg", ContentFile(image_bytes(100, 100)))
    image = make_image(iteration, source=name)
    client.force_login(reviewer)
    response = client.get(reverse("projects:image-file", args=[image.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == image_bytes(100, 100)


def test_image_file_redirects_to_a_presigned_url_for_s3_images(client, reviewer, s3):
    iteration = make_iteration(make_project("logos", reviewer=reviewer), "v1")
    image = make_image(iteration, source="s3://photos/v1/a.jpg")
    client.force_login(reviewer)
    response = client.get(reverse("projects:image-file", args=[image.pk]))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://photos.s3.amazonaws.com/v1/a.jpg?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in location
    assert "X-Amz-Expires=900" in location


def test_project_and_iteration_pages_show_counts(client, reviewer):
    project = make_project("logos", reviewer=reviewer, name="Logos")
    iteration = make_iteration(project, "v1", shown_model=make_model_version(project, "rk-7"))
    make_image(iteration, status=Image.Status.REVIEWED)
    make_image(iteration)
    make_iteration(project, "v2")
    client.force_login(reviewer)
    detail = client.get(reverse("projects:detail", args=["logos"]))
    row = detail.context["iterations"][0]
    assert (row.name, row.image_count, row.reviewed_count) == ("v1", 2, 1)
    html = detail.content.decode()
    assert "<th>Model shown</th>" in html
    assert "<td>rk-7</td>" in html and "<td>none</td>" in html
    page = client.get(reverse("projects:iteration", args=["logos", "v1"]))
    assert page.context["counts"] == {"total": 2, "pending": 1, "reviewed": 1, "empty": 0}
    assert b"2 images \xc2\xb7 1 reviewed" in page.content


@pytest.mark.parametrize("projects", [1, 20])
def test_project_list_query_count_does_not_grow_with_projects(
    client, owner, projects, django_assert_num_queries
):
    for number in range(projects):
        make_iteration(make_project(f"p{number}", owner=owner), "v1")
    client.force_login(owner)
    # session, user, projects with their iteration counts
    with django_assert_num_queries(3):
        response = client.get(reverse("projects:list"))
    assert len(response.context["projects"]) == projects


def test_presigned_url_is_reused_for_two_thirds_of_its_life(client, reviewer, monkeypatch):
    import time

    from django.core.cache import cache

    from projects.aws import s3

    cache.clear()
    signed = []

    def sign(bucket, key, *, expires, region=None):
        signed.append(expires)
        return f"https://{bucket}.example/{key}?signature={len(signed)}"

    monkeypatch.setattr(s3, "presigned_url", sign)
    iteration = make_iteration(make_project("logos", reviewer=reviewer), "v1")
    image = make_image(iteration, source="s3://photos/v1/b.jpg")
    client.force_login(reviewer)
    url = reverse("projects:image-file", args=[image.pk])
    first, second = client.get(url)["Location"], client.get(url)["Location"]
    assert (first, second, signed) == (
        "https://photos.example/v1/b.jpg?signature=1", "https://photos.example/v1/b.jpg?signature=1", [900]
    )
    # 601 s later (past two thirds of the 900 s life) the cached URL is gone: a fresh one is signed.
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(url)["Location"] == "https://photos.example/v1/b.jpg?signature=2"


def test_uploaded_images_kept_in_s3_storage_are_served_by_redirect(client, reviewer, s3, settings):
    from django.core.cache import cache

    cache.clear()
    s3.create_bucket(Bucket="loupe-files")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {"bucket_name": "loupe-files", "location": "loupe",
                                "signature_version": "s3v4", "querystring_expire": 900}},
    }
    iteration = make_iteration(make_project("logos", reviewer=reviewer), "v1")
    image = make_image(iteration, source="images/logos/v1/a.jpg")
    client.force_login(reviewer)
    response = client.get(reverse("projects:image-file", args=[image.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(
        "https://loupe-files.s3.amazonaws.com/loupe/images/logos/v1/a.jpg?")
    assert "X-Amz-Expires=900" in response["Location"]


# Session, user, access, the counters (one query at any size), the panels' runs, models and exports.
ITERATION_PAGE_QUERIES = 16


@pytest.mark.parametrize("size", [3, 60])
def test_iteration_page_reads_its_counts_in_the_same_queries_at_any_size(client, owner, size,
                                                                        django_assert_num_queries):
    iteration = make_iteration(make_project("sized", owner=owner), "v1")
    Image.objects.bulk_create(
        [Image(iteration=iteration, source=f"s3://b/{n}.jpg", name=f"{n}.jpg", width=8, height=8, position=n,
               status=Image.Status.REVIEWED if n % 3 == 0 else Image.Status.PENDING, no_objects=n % 3 == 0)
         for n in range(size)])
    client.force_login(owner)
    url = reverse("projects:iteration", args=["sized", "v1"])
    client.get(url)  # the throttled reconcile of runs ran once; the measured load is a steady one
    with django_assert_num_queries(ITERATION_PAGE_QUERIES):
        response = client.get(url)
    reviewed = len(range(0, size, 3))
    assert response.context["counts"] == {"total": size, "pending": size - reviewed, "reviewed": reviewed,
                                          "empty": reviewed}
    assert (f'<p class="counts">{size} images · {reviewed} reviewed ({reviewed} verified empty)</p>'
            in response.content.decode())
