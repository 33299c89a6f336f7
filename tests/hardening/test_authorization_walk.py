"""Issue 15, done-when: every URL pattern, walked as anonymous, outsider, reviewer and owner of
another project, with GET and POST, answers the expected status.

Each request runs in a savepoint rolled back afterwards, so every one meets the same rows. A URL
pattern added later without an entry here fails test_every_url_pattern_is_walked.
"""

from itertools import combinations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from projects.models import Membership
from reviewer.queue import claim_next
from tests.factories import (
    image_bytes,
    make_export,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal_run,
    make_training_run,
    make_user,
)

pytestmark = pytest.mark.django_db

OWNER_ONLY = "owner-only"
MEMBER = "member"
# name: (methods the view takes, who may use it)
ROUTES = {
    "projects:list": ({"GET"}, "anyone"),
    "projects:image-file": ({"GET"}, MEMBER),
    "projects:detail": ({"GET"}, MEMBER),
    "projects:settings": ({"GET", "POST"}, OWNER_ONLY),
    "projects:iteration-create": ({"POST"}, OWNER_ONLY),
    "projects:iteration": ({"GET"}, MEMBER),
    "projects:iteration-upload": ({"POST"}, OWNER_ONLY),
    "projects:iteration-import-s3": ({"POST"}, OWNER_ONLY),
    "projects:iteration-import-runs": ({"GET"}, OWNER_ONLY),
    "projects:manifest-check": ({"GET"}, MEMBER),
    "projects:manifest-download": ({"POST"}, MEMBER),  # a download records an Export: POST only
    "projects:manifest-publish": ({"POST"}, OWNER_ONLY),
    "projects:manifest-export": ({"GET"}, MEMBER),
    "projects:proposal-run-start": ({"POST"}, OWNER_ONLY),
    "projects:proposal-run": ({"GET"}, MEMBER),
    "projects:training-start": ({"POST"}, OWNER_ONLY),
    "projects:training-run": ({"GET"}, MEMBER),
    "projects:model-start": ({"POST"}, OWNER_ONLY),
    "projects:model-stop": ({"POST"}, OWNER_ONLY),
    "projects:model-refresh": ({"POST"}, OWNER_ONLY),
    "projects:groundtruth-dispatch": ({"POST"}, OWNER_ONLY),
    "projects:groundtruth-sync": ({"POST"}, OWNER_ONLY),
    "projects:groundtruth-stop": ({"POST"}, OWNER_ONLY),
    "reviewer:my-work": ({"GET"}, "anyone"),
    "reviewer:image": ({"GET"}, MEMBER),
    "reviewer:submit": ({"POST"}, MEMBER),
    "reviewer:skip": ({"POST"}, MEMBER),
    "reviewer:lease": ({"POST"}, MEMBER),
    "reviewer:reopen": ({"POST"}, MEMBER),
    "reviewer:next": ({"GET"}, MEMBER),
    "reviewer:back": ({"POST"}, MEMBER),
    "reviewer:images": ({"GET"}, OWNER_ONLY),
    "reviewer:queue-order": ({"POST"}, OWNER_ONLY),
}
# What a reviewer of the project gets from each member URL (the setup's image is leased to them).
REVIEWER_STATUS = {
    ("projects:image-file", "GET"): 200,
    ("projects:detail", "GET"): 200,
    ("projects:iteration", "GET"): 200,
    ("projects:manifest-check", "GET"): 200,
    ("projects:manifest-download", "POST"): 409,  # nothing reviewed yet: Rekognition would refuse it
    ("projects:manifest-export", "GET"): 200,
    ("projects:proposal-run", "GET"): 302,  # outside the iteration page's polling: back to it
    ("projects:training-run", "GET"): 302,
    ("reviewer:image", "GET"): 200,
    ("reviewer:submit", "POST"): 400,  # an empty body: refused as JSON, nothing saved
    ("reviewer:skip", "POST"): 302,
    ("reviewer:lease", "POST"): 200,
    ("reviewer:reopen", "POST"): 302,
    ("reviewer:next", "GET"): 302,
    ("reviewer:back", "POST"): 302,
}


def _names(resolver, namespace=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace in ("projects", "reviewer"):
                yield from _names(entry, entry.namespace + ":")
        elif isinstance(entry, URLPattern) and namespace:
            yield namespace + entry.name


def test_every_url_pattern_is_walked():
    assert sorted(_names(get_resolver())) == sorted(ROUTES)


@pytest.fixture
def world():
    owner, reviewer = make_user("olga"), make_user("rita")
    outsider, other_owner = make_user("otto"), make_user("oscar")
    project = make_project("logos", owner=owner, reviewer=reviewer)
    make_project("other", owner=other_owner)
    iteration = make_iteration(project, "v2")
    source = default_storage.save("images/logos/v2/a.jpg", ContentFile(image_bytes(100, 100)))
    image = make_image(iteration, source=source, width=100, height=100)
    claim_next(iteration=iteration, user=reviewer)
    model = make_model_version(project, "m1")
    kwargs = {
        "slug": "logos", "name": "v2", "image_id": image.pk, "model_id": model.pk,
        "export_id": make_export(iteration).pk, "run_id": make_proposal_run(iteration, model).pk,
        # Nobody in the walk owns the project: a job's URL is refused before the job is looked up.
        "job_id": 1,
    }
    training_run = make_training_run(iteration).pk
    users = {"outsider": outsider, "other-owner": other_owner, "reviewer": reviewer}
    return kwargs, training_run, users


def _url(name, kwargs, training_run):
    """The URL of name for the setup's project, with whichever of kwargs its pattern takes."""
    needed = dict(kwargs, run_id=training_run) if name == "projects:training-run" else kwargs
    keys = list(needed)
    for size in range(len(keys) + 1):
        for chosen in combinations(keys, size):
            try:
                return reverse(name, kwargs={key: needed[key] for key in chosen})
            except NoReverseMatch:
                continue
    raise AssertionError(f"cannot reverse {name}")


def _walk(client, kwargs, training_run):
    for name in sorted(ROUTES):
        url = _url(name, kwargs, training_run)
        for method in ("GET", "POST"):
            with transaction.atomic():
                response = getattr(client, method.lower())(url)
                transaction.set_rollback(True)
            yield name, method, url, response


def expected(role, name, method):
    methods, who = ROUTES[name]
    if method not in methods:
        return 405
    if who == "anyone":
        return 200
    if role in ("outsider", "other-owner"):
        return 404  # a project they are not in does not exist for them
    if who == OWNER_ONLY:
        return 403
    return REVIEWER_STATUS[(name, method)]


def test_anonymous_users_are_sent_to_log_in_from_every_url(client, world):
    kwargs, training_run, _users = world
    seen = [(name, method, response.status_code, response.get("Location"))
            for name, method, url, response in _walk(client, kwargs, training_run)]
    assert len(seen) == 2 * len(ROUTES)
    for name, method, status, location in seen:
        url = _url(name, kwargs, training_run)
        assert (name, method, status, location) == (name, method, 302, f"/login/?next={url}")


@pytest.mark.parametrize("role", ["outsider", "other-owner", "reviewer"])
def test_every_url_answers_each_role_as_expected(client, world, role):
    kwargs, training_run, users = world
    client.force_login(users[role])
    got = {(name, method): response.status_code for name, method, _url, response in
           _walk(client, kwargs, training_run)}
    want = {(name, method): expected(role, name, method) for name in ROUTES for method in ("GET", "POST")}
    assert got == want


def test_the_owner_of_another_project_is_no_member_of_this_one(world):
    _kwargs, _run, users = world
    assert not Membership.objects.filter(user=users["other-owner"], project__slug="logos").exists()


@pytest.mark.parametrize("role", ["anonymous", "outsider", "other-owner", "reviewer"])
def test_the_admin_is_for_staff_only(client, world, role):
    _kwargs, _run, users = world
    if role != "anonymous":
        client.force_login(users[role])
    for url in ("/admin/", "/admin/projects/project/", "/admin/auth/user/"):
        response = client.get(url)
        # Anonymous users meet Loupe's own login (the admin's index sends them to its own, which
        # is exempt from LoginRequiredMiddleware); logged-in non-staff users the admin's login.
        login = "/login/" if role == "anonymous" and url != "/admin/" else "/admin/login/"
        assert (url, response.status_code, response["Location"].split("?")[0]) == (url, 302, login)


def test_a_get_of_the_manifest_download_writes_nothing(client, world):
    from projects.models import Export

    kwargs, _run, users = world
    client.force_login(users["reviewer"])
    before = Export.objects.count()
    url = reverse("projects:manifest-download", args=["logos", "v2"])
    for _ in range(3):
        assert client.get(url).status_code == 405
    assert Export.objects.count() == before
