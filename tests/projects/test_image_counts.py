"""The maintained image counters (projects.ImageCount) equal a fresh COUNT after every kind of write."""

import threading

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, Q

from projects.models import Image, ImageCount, Iteration, counts_of, image_counts
from reviewer.editor.reviews import submit_review
from reviewer.queue import claim_image
from tests.factories import make_image, make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db


def counted(iteration):
    """What the counters must say, counted the slow way."""
    return Image.objects.filter(iteration=iteration).aggregate(
        total=Count("id"), pending=Count("id", filter=Q(status=Image.Status.PENDING)),
        reviewed=Count("id", filter=Q(status=Image.Status.REVIEWED)),
        empty=Count("id", filter=Q(no_objects=True)))


def bulk(iteration, count, *, start=0, **fields):
    return Image.objects.bulk_create(
        [Image(iteration=iteration, source=f"s3://b/{iteration.name}/{n}.jpg", name=f"{n}.jpg", width=8,
               height=8, position=n, **fields) for n in range(start, start + count)], batch_size=100)


@pytest.fixture
def iteration():
    return make_iteration(make_project("counts"), "v1")


def test_bulk_create_and_raw_inserts_are_counted(iteration):
    bulk(iteration, 250)
    bulk(iteration, 30, start=250, status=Image.Status.REVIEWED, no_objects=True)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO projects_image (iteration_id, source, name, width, height, depth, file_size, "
            "format, position, random_key, priority, status, no_objects, version, changed, created_at) "
            "VALUES "
            "(%s, %s, 'raw.jpg', 8, 8, 3, 0, 'JPEG', 0, 1, 0, 'pending', %s, 0, %s, CURRENT_TIMESTAMP)",
            [(iteration.pk, f"s3://b/raw{n}.jpg", False, False) for n in range(5)])
    assert counts_of(iteration) == counted(iteration) == {"total": 285, "pending": 255, "reviewed": 30,
                                                          "empty": 30}


def test_queryset_updates_move_counts_between_statuses_flags_and_iterations(iteration):
    other = make_iteration(iteration.project, "v2")
    bulk(iteration, 10)
    Image.objects.filter(iteration=iteration, position__lt=4).update(status=Image.Status.REVIEWED)
    Image.objects.filter(iteration=iteration, position__lt=2).update(no_objects=True)
    # Updates of columns that are not counted change nothing.
    Image.objects.filter(iteration=iteration).update(priority=0.5)
    Image.objects.filter(iteration=iteration, position=9).update(iteration=other)
    assert counts_of(iteration) == counted(iteration) == {"total": 9, "pending": 5, "reviewed": 4, "empty": 2}
    assert counts_of(other) == counted(other) == {"total": 1, "pending": 1, "reviewed": 0, "empty": 0}


def test_save_of_one_image_is_counted(iteration):
    image = make_image(iteration)
    image.status, image.no_objects = Image.Status.REVIEWED, True
    image.save()
    assert counts_of(iteration) == {"total": 1, "pending": 0, "reviewed": 1, "empty": 1}


def test_review_submit_reopen_and_correction_keep_the_counts(iteration):
    reviewer = make_user("r")
    first, second = make_image(iteration), make_image(iteration)
    submit_review(image=first, reviewer=reviewer, version=0, boxes=[], no_objects=True)
    assert counts_of(iteration) == {"total": 2, "pending": 1, "reviewed": 1, "empty": 1}
    # Re-opening leases the reviewed image; it stays reviewed until the correction is saved.
    assert claim_image(image=first, user=reviewer)
    assert counts_of(iteration) == {"total": 2, "pending": 1, "reviewed": 1, "empty": 1}
    submit_review(image=first, reviewer=reviewer, version=1, boxes=[], no_objects=False)
    submit_review(image=second, reviewer=reviewer, version=0, boxes=[])
    assert counts_of(iteration) == counted(iteration) == {"total": 2, "pending": 0, "reviewed": 2, "empty": 0}


def test_a_rolled_back_write_leaves_the_counts(iteration):
    bulk(iteration, 3)
    with pytest.raises(RuntimeError), transaction.atomic():
        bulk(iteration, 5, start=3)
        Image.objects.filter(iteration=iteration).update(status=Image.Status.REVIEWED)
        raise RuntimeError("rolled back")
    assert counts_of(iteration) == {"total": 3, "pending": 3, "reviewed": 0, "empty": 0}


def test_deleting_images_iterations_and_projects_is_counted(iteration):
    other_project = make_project("other")
    kept = make_iteration(other_project, "v1")
    bulk(kept, 4)
    doomed = make_iteration(iteration.project, "v2")
    bulk(iteration, 6)
    bulk(doomed, 5, status=Image.Status.REVIEWED)
    make_image(iteration).delete()
    Image.objects.filter(iteration=iteration, position__lt=2).delete()
    assert counts_of(iteration) == counted(iteration) == {"total": 4, "pending": 4, "reviewed": 0, "empty": 0}
    doomed.delete()
    assert not ImageCount.objects.filter(iteration_id=doomed.pk).exists()
    iteration.project.delete()
    assert list(ImageCount.objects.values_list("iteration_id", "status", "no_objects", "count")) == [
        (kept.pk, "pending", False, 4)]
    assert image_counts([kept.pk, iteration.pk]) == {
        kept.pk: {"total": 4, "pending": 4, "reviewed": 0, "empty": 0},
        iteration.pk: {"total": 0, "pending": 0, "reviewed": 0, "empty": 0}}


@pytest.mark.django_db(transaction=True)
def test_concurrent_review_submits_keep_the_counts_exact_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time: there is no concurrent save to count")
    iteration = make_iteration(make_project("concurrent"), "v1")
    second = make_iteration(iteration.project, "v2")
    bulk(iteration, 80)
    bulk(second, 20)
    reviewers = [make_user(f"r{n}") for n in range(8)]
    images = list(Image.objects.filter(iteration=iteration).order_by("id"))
    errors, start = [], threading.Barrier(len(reviewers) + 1)

    def review(reviewer, mine):
        try:
            start.wait()
            for n, image in enumerate(mine):
                submit_review(image=image, reviewer=reviewer, version=0, boxes=[], no_objects=n % 2 == 0)
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    def insert_more():
        try:
            start.wait()
            for batch in range(5):
                bulk(iteration, 10, start=100 + 10 * batch)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=review, args=(reviewer, images[n::8])) for n, reviewer in
               enumerate(reviewers)]
    threads.append(threading.Thread(target=insert_more))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counts_of(iteration) == counted(iteration) == {"total": 130, "pending": 50, "reviewed": 80,
                                                          "empty": 40}
    assert counts_of(second) == {"total": 20, "pending": 20, "reviewed": 0, "empty": 0}
    assert Iteration.objects.count() == 2
