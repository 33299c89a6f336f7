from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from playwright.sync_api import expect

from projects.models import Image
from reviewer.models import Box, Review
from tests.factories import (
    image_bytes,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_user,
    thresholds,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def project(reviewer):
    return make_project("logos", reviewer=reviewer)


@pytest.fixture
def model(project):
    return make_model_version(project, "m1",
                              thresholds=thresholds(project, {"aws-logo": 50, "smile-logo": 50}))


@pytest.fixture
def iteration(project, model):
    return make_iteration(project, "v2", shown_model=model)


def stored_image(iteration, name, **fields):
    source = default_storage.save(f"images/{name}", ContentFile(image_bytes(320, 240)))
    return make_image(iteration, source=source, name=name, width=320, height=240, **fields)


def open_review(login_page, live_server, user, iteration):
    page = login_page(user)
    page.goto(f"{live_server.url}/review/{iteration.project.slug}/{iteration.name}/next")
    page.wait_for_selector("#editor-svg g.box, #editor-svg")
    return page


def submit_with(page, key):
    with page.expect_response(lambda r: r.url.endswith("/submit")) as response:
        page.keyboard.press(key)
    assert response.value.status == 200


def boxes(image):
    return list(Box.objects.filter(image=image).order_by("id").values_list(
        "label__name", "left", "top", "width", "height", "origin", "relabeled"))


def list_states(page):
    return page.eval_on_selector_all(
        "#box-list li, #hidden-box-list li", "els => els.map(e => [e.dataset.state, e.dataset.hidden])")


def test_enter_accepts_every_proposal_and_the_next_image_appears(login_page, live_server, reviewer,
                                                                 iteration, model):
    first = stored_image(iteration, "a.jpg", priority=0.9)
    second = stored_image(iteration, "b.jpg", priority=0.1)
    make_proposal(first, "aws-logo", (10, 20, 100, 50), confidence=92, model_version=model)
    make_proposal(first, "smile-logo", (150.4, 100.2, 60, 40), confidence=81, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    assert page.inner_text("#progress") == "2 of 2 left in v2"
    assert list_states(page) == [["undecided", "false"], ["undecided", "false"]]
    fitted = page.locator("#editor-svg").bounding_box()["width"]
    page.keyboard.press("+")
    zoomed = page.locator("#editor-svg").bounding_box()["width"]
    assert zoomed == pytest.approx(fitted * 1.25, abs=1)

    submit_with(page, "Enter")

    page.wait_for_url(f"**/review/images/{second.pk}/")
    expect(page.locator("#progress")).to_have_text("1 of 2 left in v2")
    # Same size of image, same zoom: the zoom level is kept from image to image.
    assert page.locator("#editor-svg").bounding_box()["width"] == zoomed
    assert page.evaluate("localStorage.getItem('loupe.review.zoom')") == "1.25"
    assert boxes(first) == [
        ("aws-logo", 10.0, 20.0, 100.0, 50.0, "accepted", False),
        ("smile-logo", 150.0, 100.0, 60.0, 40.0, "accepted", False),
    ]
    first.refresh_from_db()
    assert (first.status, first.version, first.leased_by_id) == (Image.Status.REVIEWED, 1, None)


def test_keyboard_rejects_one_box_relabels_and_moves_another(login_page, live_server, reviewer,
                                                            iteration, model):
    image = stored_image(iteration, "a.jpg")
    wrong = make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=95, model_version=model)
    mislabeled = make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=90, model_version=model)
    third = make_proposal(image, "smile-logo", (20, 150, 50, 50), confidence=85, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)

    page.keyboard.press("Tab")
    page.keyboard.press("x")
    assert list_states(page)[0] == ["rejected", "false"]
    page.keyboard.press("Control+z")
    assert list_states(page)[0] == ["undecided", "false"]
    page.keyboard.press("Control+Shift+z")
    assert list_states(page)[0] == ["rejected", "false"]
    page.keyboard.press("2")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    assert list_states(page) == [["rejected", "false"], ["adjusted", "false"], ["undecided", "false"]]
    submit_with(page, "Enter")

    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [
        ("smile-logo", 152.0, 100.0, 60.0, 41.0, "adjusted", True),
        ("smile-logo", 20.0, 150.0, 50.0, 50.0, "accepted", False),
    ]
    decisions = Review.objects.get(image=image).decisions
    assert [(d["proposal"], d["verdict"]) for d in decisions] == [
        (mislabeled.pk, "adjusted"), (third.pk, "accepted"), (wrong.pk, "rejected")]


def test_drawing_a_box_with_the_mouse_adds_it(login_page, live_server, reviewer, iteration, model):
    image = stored_image(iteration, "a.jpg")
    page = open_review(login_page, live_server, reviewer, iteration)
    page.keyboard.press("2")
    area = page.locator("#editor-svg").bounding_box()
    scale = area["width"] / 320

    def at(x, y):
        return area["x"] + x * scale, area["y"] + y * scale

    page.mouse.move(*at(40, 30))
    page.mouse.down()
    page.mouse.move(*at(100, 80), steps=5)
    page.mouse.move(*at(140, 90), steps=5)
    page.mouse.up()
    assert list_states(page) == [["added", "false"]]
    # The new box is selected: drag its bottom-right handle 10 px right and 20 px down.
    page.mouse.move(*at(140, 90))
    page.mouse.down()
    page.mouse.move(*at(145, 100), steps=3)
    page.mouse.move(*at(150, 110), steps=3)
    page.mouse.up()
    submit_with(page, "Enter")

    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("smile-logo", 40.0, 30.0, 110.0, 80.0, "added", False)]


def test_confidence_slider_hides_a_box_without_rejecting_it(login_page, live_server, reviewer,
                                                           iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    low = make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    slider = page.locator('[data-testid="slider-aws-logo"]')
    assert slider.input_value() == "50"
    assert list_states(page) == [["undecided", "false"], ["undecided", "true"]]
    assert page.locator("#editor-svg g.box").count() == 1

    slider.fill("20")
    assert list_states(page) == [["undecided", "false"], ["undecided", "false"]]
    assert page.locator("#editor-svg g.box").count() == 2
    slider.fill("60")
    assert list_states(page) == [["undecided", "false"], ["undecided", "true"]]
    page.locator("#stage").focus()
    submit_with(page, "Enter")

    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 10.0, 20.0, 100.0, 50.0, "accepted", False)]
    rejected = Review.objects.get(image=image).decisions[1]
    assert (rejected["proposal"], rejected["verdict"], rejected["hidden"]) == (low.pk, "rejected", True)


def test_no_objects_key_saves_the_image_as_empty(login_page, live_server, reviewer, iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    submit_with(page, "n")

    page.wait_for_selector('[data-testid="queue-empty"]')
    image.refresh_from_db()
    assert (image.status, image.no_objects, boxes(image)) == (Image.Status.REVIEWED, True, [])
    assert Review.objects.get(image=image).decisions[0]["verdict"] == "rejected"


def test_skip_gives_the_image_back_and_shows_the_next(login_page, live_server, reviewer, iteration):
    first = stored_image(iteration, "a.jpg", priority=0.9)
    second = stored_image(iteration, "b.jpg", priority=0.1)
    page = open_review(login_page, live_server, reviewer, iteration)
    assert page.url.endswith(f"/review/images/{first.pk}/")
    with page.expect_response(lambda r: r.url.endswith("/skip")):
        page.keyboard.press("s")

    page.wait_for_url(f"**/review/images/{second.pk}/")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.leased_by_id) == (Image.Status.PENDING, None)
    assert (second.leased_by_id, Review.objects.count()) == (reviewer.pk, 0)


def test_a_lost_lease_is_explained_and_the_work_is_kept_for_a_retry(login_page, live_server, reviewer,
                                                                    iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=95, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    page.keyboard.press("Tab")
    page.keyboard.press("x")
    other = make_user("other")
    later = timezone.now() + timedelta(minutes=5)
    Image.objects.filter(pk=image.pk).update(leased_by=other, lease_expires_at=later)

    with page.expect_response(lambda r: r.url.endswith("/submit")) as response:
        page.keyboard.press("Enter")
    assert response.value.status == 409
    message = page.locator("#message")
    # The 409 arrives before the page has drawn its message: wait for the text, don't race it.
    expect(message).to_contain_text(
        "Another reviewer is holding this image now (your hold on it expired).")
    assert list_states(page) == [["rejected", "false"], ["undecided", "false"]]

    Image.objects.filter(pk=image.pk).update(leased_by=None, lease_expires_at=None)
    with page.expect_response(lambda r: r.url.endswith("/submit")) as response:
        message.get_by_role("button", name="Try again").click()
    assert response.value.status == 200
    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 150.0, 100.0, 60.0, 40.0, "accepted", False)]


def test_back_reopens_the_last_image_and_a_correction_replaces_its_boxes(login_page, live_server, reviewer,
                                                                         iteration, model):
    first = stored_image(iteration, "a.jpg", priority=0.9)
    second = stored_image(iteration, "b.jpg", priority=0.1)
    make_proposal(first, "aws-logo", (10, 20, 100, 50), confidence=92, model_version=model)
    kept = make_proposal(first, "smile-logo", (150, 100, 60, 40), confidence=81, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{second.pk}/")

    page.get_by_role("button", name="← Back").click()
    page.wait_for_url(f"**/review/images/{first.pk}/")
    assert list_states(page) == [["accepted", "false"], ["accepted", "false"]]
    page.keyboard.press("Tab")
    page.keyboard.press("x")
    submit_with(page, "Enter")

    # The second image, still held by this reviewer, comes back next.
    page.wait_for_url(f"**/review/images/{second.pk}/")
    assert boxes(first) == [("smile-logo", 150.0, 100.0, 60.0, 40.0, "accepted", False)]
    assert Box.objects.get(image=first).proposal_id == kept.pk
    first.refresh_from_db()
    assert (first.version, Review.objects.filter(image=first).count()) == (2, 2)


def test_work_on_an_open_page_is_saved_after_a_new_proposal_run(login_page, live_server, reviewer, project,
                                                               iteration, model):
    image = stored_image(iteration, "a.jpg")
    shown = make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=95, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    assert list_states(page) == [["undecided", "false"]]
    # An owner starts a proposal run with another model while the page is open.
    newer = make_model_version(project, "m2")
    make_proposal(image, "smile-logo", (150, 100, 60, 40), confidence=90, model_version=newer)
    iteration.shown_model = newer
    iteration.save(update_fields=["shown_model"])

    submit_with(page, "Enter")

    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 10.0, 20.0, 100.0, 50.0, "accepted", False)]
    assert Box.objects.get(image=image).proposal_id == shown.pk


def test_the_review_page_loads_without_a_failed_request_or_a_console_error(login_page, live_server, reviewer,
                                                                          iteration):
    stored_image(iteration, "a.jpg")
    page = login_page(reviewer)
    failed, errors = [], []
    page.on("response", lambda response: failed.append((response.status, response.url))
            if response.status >= 400 else None)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/review/{iteration.project.slug}/{iteration.name}/next")
    page.wait_for_load_state("networkidle")
    assert (failed, errors) == ([], [])
