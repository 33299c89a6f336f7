import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.signals import user_logged_out
from django.core.management import call_command
from django.db import connection, connections
from django.db.utils import load_backend
from django.utils import timezone

from projects.models import Image, Project
from reviewer.editor.reviews import submit_review
from reviewer.queue import (
    claim_image,
    claim_next,
    progress,
    release_lease,
    renew_lease,
)
from tests.factories import make_image, make_iteration, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def iteration(reviewer):
    return make_iteration(make_project("logos", reviewer=reviewer), "v2")


def images(iteration, *specs):
    return [make_image(iteration, name=name, position=position, priority=priority, random_key=key)
            for name, position, priority, key in specs]


SPECS = [("a", 1, 0.2, 20), ("b", 2, 0.9, 30), ("c", 3, 0.5, 10)]


@pytest.mark.parametrize(("order", "expected"), [
    (Project.ReviewOrder.HARDEST, ["b", "c", "a"]),
    (Project.ReviewOrder.RANDOM, ["c", "a", "b"]),
    (Project.ReviewOrder.FILE, ["a", "b", "c"]),
])
def test_claims_follow_the_projects_review_order(iteration, order, expected):
    Project.objects.filter(pk=iteration.project_id).update(review_order=order)
    iteration.project.refresh_from_db()
    images(iteration, *SPECS)
    users = [make_user() for _ in range(3)]
    assert [claim_next(iteration=iteration, user=user).name for user in users] == expected


def test_a_reviewer_gets_their_own_lease_back_until_it_expires(iteration, reviewer):
    first, second = images(iteration, ("a", 1, 0.9, 1), ("b", 2, 0.1, 2))
    now = timezone.now()
    claimed = claim_next(iteration=iteration, user=reviewer, now=now)
    assert claimed.pk == first.pk
    assert claimed.lease_expires_at == now + timedelta(seconds=600)
    assert claim_next(iteration=iteration, user=reviewer, now=now + timedelta(seconds=599)).pk == first.pk


def test_an_expired_lease_is_reclaimed_by_someone_else(iteration, reviewer):
    (only,) = images(iteration, ("a", 1, 0.9, 1))
    other = make_user("other")
    now = timezone.now()
    assert claim_next(iteration=iteration, user=reviewer, now=now).pk == only.pk
    assert claim_next(iteration=iteration, user=other, now=now + timedelta(seconds=599)) is None
    reclaimed = claim_next(iteration=iteration, user=other, now=now + timedelta(seconds=600))
    assert reclaimed.pk == only.pk
    only.refresh_from_db()
    assert (only.leased_by_id, only.lease_expires_at) == (other.pk, now + timedelta(seconds=1200))
    assert renew_lease(image=only, user=reviewer, now=now + timedelta(seconds=601)) is None


def test_renew_extends_and_release_frees_only_the_holders_lease(iteration, reviewer):
    (only,) = images(iteration, ("a", 1, 0.9, 1))
    other = make_user("other")
    now = timezone.now()
    claim_next(iteration=iteration, user=reviewer, now=now)
    assert renew_lease(image=only, user=reviewer, now=now + timedelta(seconds=300)) == now + timedelta(
        seconds=900)
    assert release_lease(image=only, user=other) is False
    assert release_lease(image=only, user=reviewer) is True
    only.refresh_from_db()
    assert (only.leased_by_id, only.lease_expires_at) == (None, None)


def test_skipped_images_are_excluded_and_reviewed_ones_never_offered(iteration, reviewer):
    first, second, third = images(iteration, *SPECS)
    Image.objects.filter(pk=second.pk).update(status=Image.Status.REVIEWED)
    assert claim_next(iteration=iteration, user=reviewer, exclude_ids=[third.pk]).pk == first.pk
    assert progress(iteration=iteration) == {"left": 2, "total": 3, "iteration": "v2"}


def test_progress_follows_every_save_at_once(iteration):
    first, second, third = images(iteration, *SPECS)
    assert progress(iteration=iteration) == {"left": 3, "total": 3, "iteration": "v2"}
    Image.objects.filter(pk=first.pk).update(status=Image.Status.REVIEWED)
    assert progress(iteration=iteration) == {"left": 2, "total": 3, "iteration": "v2"}
    Image.objects.filter(pk=second.pk).update(status=Image.Status.REVIEWED)
    assert progress(iteration=iteration) == {"left": 1, "total": 3, "iteration": "v2"}


def test_claiming_a_given_image_fails_while_another_reviewer_holds_it(iteration, reviewer):
    (only,) = images(iteration, ("a", 1, 0.9, 1))
    other = make_user("other")
    claim_next(iteration=iteration, user=other)
    assert claim_image(image=only, user=reviewer) is False
    assert claim_image(image=only, user=other) is True


def test_logging_out_releases_every_lease(iteration, reviewer, client):
    first, second = images(iteration, ("a", 1, 0.9, 1), ("b", 2, 0.1, 2))
    other_iteration = make_iteration(iteration.project, "v3")
    (elsewhere,) = images(other_iteration, ("z", 1, 0.9, 1))
    claim_next(iteration=iteration, user=reviewer)
    claim_next(iteration=other_iteration, user=reviewer)
    client.force_login(reviewer)
    client.post("/logout/")
    assert list(Image.objects.filter(leased_by__isnull=False)) == []
    assert user_logged_out.has_listeners()


@contextmanager
def thread_database(tmp_path):
    """Yield a function that points the calling thread's default connection at a shared database.

    PostgreSQL's test database is shared by every connection already. SQLite's test database lives
    in memory, where concurrent connections get "table is locked" instead of waiting, so on SQLite
    the threads (and this test's setup) use a migrated file database of their own.
    """
    if connection.vendor != "sqlite":
        yield lambda: None
        return
    settings = dict(connections.settings["default"], NAME=str(tmp_path / "claims.sqlite3"))
    wrapper_class = load_backend(settings["ENGINE"]).DatabaseWrapper
    original = connections["default"]

    def use_file():
        connections["default"] = wrapper_class(settings, "default")

    use_file()
    call_command("migrate", verbosity=0)
    try:
        yield use_file
    finally:
        connections["default"].close()
        connections["default"] = original


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_get_the_same_image(tmp_path):
    with thread_database(tmp_path) as use_shared_database:
        project = make_project("race")
        iteration = make_iteration(project, "v1")
        Image.objects.bulk_create([
            Image(iteration=iteration, source=f"s3://b/{n}.jpg", name=f"{n}.jpg", width=10, height=10,
                  position=n, priority=n % 7) for n in range(60)])
        users = [make_user(f"claimer{n}") for n in range(6)]
        # Every round, all reviewers claim at the same moment, then all save: each claim races the
        # others (SQLite's lock would otherwise let one thread take every image in turn).
        barrier = threading.Barrier(len(users), timeout=60)
        claimed, errors = {user.pk: [] for user in users}, []

        def review_in_rounds(user):
            use_shared_database()
            try:
                for _ in range(10):
                    barrier.wait()
                    image = claim_next(iteration=iteration, user=user)
                    claimed[user.pk].append(image.pk)
                    barrier.wait()
                    submit_review(image=image, reviewer=user, version=image.version, boxes=[],
                                  no_objects=True)
            except Exception as error:  # reported below, with the thread's user
                errors.append((user.username, repr(error)))
                barrier.abort()
            finally:
                connections["default"].close()

        threads = [threading.Thread(target=review_in_rounds, args=(user,)) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        every_claim = [pk for pks in claimed.values() for pk in pks]
        assert sorted(every_claim) == sorted(Image.objects.values_list("pk", flat=True))
        assert [len(pks) for pks in claimed.values()] == [10] * 6
        assert claim_next(iteration=iteration, user=users[0]) is None
        reviewed_by = dict(Image.objects.values_list("pk", "reviewed_by_id"))
        assert all(reviewed_by[pk] == user_pk for user_pk, pks in claimed.items() for pk in pks)


def test_renew_never_claims_an_image_the_reviewer_does_not_hold(iteration, reviewer):
    never_leased, reviewed, expired = images(iteration, ("a", 1, 0.9, 1), ("b", 2, 0.5, 2), ("c", 3, 0.1, 3))
    now = timezone.now()
    Image.objects.filter(pk=reviewed.pk).update(status=Image.Status.REVIEWED, reviewed_by=make_user("other"))
    Image.objects.filter(pk=expired.pk).update(leased_by=reviewer,
                                               lease_expires_at=now - timedelta(seconds=5))
    assert renew_lease(image=never_leased, user=reviewer, now=now) is None
    assert renew_lease(image=reviewed, user=reviewer, now=now) is None
    # The reviewer's own lease that just ran out, with nobody else on the image: still theirs.
    assert renew_lease(image=expired, user=reviewer, now=now) == now + timedelta(seconds=600)
    assert dict(Image.objects.values_list("name", "leased_by_id")) == {"a": None, "b": None, "c": reviewer.pk}
