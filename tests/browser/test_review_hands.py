"""Issue 10, "faster hands" and "hidden proposals stay out of the way": the editor's shortcuts."""

import pytest
from playwright.sync_api import expect

from projects.models import Image
from reviewer.models import Review
from tests.browser.test_review_page import boxes, list_states, open_review, stored_image, submit_with
from tests.factories import make_proposal

pytestmark = pytest.mark.django_db(transaction=True)


def test_hidden_proposals_are_one_collapsed_group_that_opens(login_page, live_server, reviewer, iteration,
                                                            model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    make_proposal(image, "smile-logo", (20, 150, 50, 50), confidence=20, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    toggle = page.locator("#hidden-toggle")
    expect(toggle).to_have_text("2 hidden below threshold")
    assert page.inner_text("#box-summary") == "1 undecided · 2 hidden"
    assert page.locator("#box-list li").count() == 1
    expect(page.locator("#hidden-box-list")).to_be_hidden()
    toggle.click()
    expect(page.locator("#hidden-box-list li")).to_have_count(2)
    assert toggle.get_attribute("aria-expanded") == "true"
    page.locator('[data-testid="slider-aws-logo"]').fill("25")
    expect(toggle).to_have_text("1 hidden below threshold")
    assert list_states(page) == [["undecided", "false"], ["undecided", "false"], ["undecided", "true"]]


def test_slider_positions_are_kept_across_images_and_reloads(login_page, live_server, reviewer, iteration,
                                                            model):
    stored_image(iteration, "a.jpg")
    second = stored_image(iteration, "b.jpg")
    make_proposal(second, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    page.locator('[data-testid="slider-aws-logo"]').fill("20")
    page.locator("#stage").focus()
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{second.pk}/")
    assert list_states(page) == [["undecided", "false"]]
    page.reload()
    page.wait_for_selector("#box-list li")
    assert page.locator('[data-testid="slider-aws-logo"]').input_value() == "20"
    assert page.locator('[data-testid="slider-smile-logo"]').input_value() == "50"
    assert list_states(page) == [["undecided", "false"]]


def test_b_shows_the_label_a_drawn_box_will_get(login_page, live_server, reviewer, iteration, model):
    stored_image(iteration, "a.jpg")
    page = open_review(login_page, live_server, reviewer, iteration)
    state = page.locator('[data-testid="draw-state"]')
    expect(state).to_be_hidden()
    page.keyboard.press("2")
    page.keyboard.press("b")
    expect(state).to_have_text("Drawing: smile-logo (drag on the image, Esc cancels)")
    page.keyboard.press("Escape")
    expect(state).to_be_hidden()


def test_alt_shift_arrows_resize_from_the_left_and_top_edges(login_page, live_server, reviewer, iteration,
                                                            model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    page.keyboard.press("Tab")
    page.keyboard.press("Alt+Shift+ArrowLeft")
    page.keyboard.press("Alt+Shift+ArrowLeft")
    page.keyboard.press("Alt+Shift+ArrowDown")
    page.keyboard.press("Shift+ArrowRight")
    assert page.inner_text("#box-list li .box-geom") == "103×49 at 8,21"
    submit_with(page, "Enter")
    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 8.0, 21.0, 103.0, 49.0, "adjusted", False)]


def test_no_objects_can_be_taken_back_with_ctrl_z(login_page, live_server, reviewer, iteration, model):
    first = stored_image(iteration, "a.jpg")
    second = stored_image(iteration, "b.jpg")
    make_proposal(first, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    submit_with(page, "n")
    page.wait_for_url(f"**/review/images/{second.pk}/")
    expect(page.locator("#message")).to_have_text(
        "a.jpg saved as “no objects”. Ctrl+Z or Back reopens it. Undo")
    page.keyboard.press("Control+z")
    page.wait_for_url(f"**/review/images/{first.pk}/")
    page.wait_for_selector("#review-app:not(.readonly) #box-list li")
    assert list_states(page) == [["rejected", "false"]]
    page.keyboard.press("Tab")
    page.keyboard.press("a")
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{second.pk}/")
    first.refresh_from_db()
    assert (first.no_objects, first.version, boxes(first)) == (
        False, 2, [("aws-logo", 10.0, 20.0, 100.0, 50.0, "accepted", False)])


def test_back_walks_back_one_image_per_press(login_page, live_server, reviewer, iteration, model):
    first = stored_image(iteration, "a.jpg")
    second = stored_image(iteration, "b.jpg")
    third = stored_image(iteration, "c.jpg")
    page = open_review(login_page, live_server, reviewer, iteration)
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{second.pk}/")
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{third.pk}/")
    back = page.get_by_role("button", name="← Back")
    back.click()
    page.wait_for_url(f"**/review/images/{second.pk}/")
    page.get_by_role("button", name="← Back").click()
    page.wait_for_url(f"**/review/images/{first.pk}/")
    expect(page.locator("#review-app")).not_to_have_class("review-app readonly")
    second.refresh_from_db()
    third.refresh_from_db()
    assert (second.leased_by_id, third.leased_by_id, third.status) == (
        None, reviewer.pk, Image.Status.PENDING)
    assert Review.objects.count() == 2


def test_enter_right_after_dragging_a_slider_saves(login_page, live_server, reviewer, iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    slider = page.locator('[data-testid="slider-aws-logo"]')
    area = slider.bounding_box()
    page.mouse.click(area["x"] + 2, area["y"] + area["height"] / 2)
    assert slider.input_value() == "0"
    submit_with(page, "Enter")
    page.wait_for_selector('[data-testid="queue-empty"]')
    assert [row[5] for row in boxes(image)] == ["accepted", "accepted"]
