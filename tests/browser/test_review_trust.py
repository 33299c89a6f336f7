"""Issue 10: the editor saves what the reviewer did, shows what they decided, and keys do not misfire."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from projects.models import Image, Membership
from reviewer.editor.reviews import BoxInput, submit_review
from reviewer.models import Review
from tests.browser.test_review_page import boxes, list_states, open_review, stored_image, submit_with
from tests.factories import make_proposal

pytestmark = pytest.mark.django_db(transaction=True)


def selected_row(page):
    return page.eval_on_selector("#box-list li.selected", "e => [e.dataset.state, e.dataset.hidden]")


def drawn_boxes(page):
    return page.locator("#editor-svg g.box").count()


def test_a_slider_drags_to_a_value_and_arrow_keys_keep_moving_it(login_page, live_server, reviewer,
                                                                  iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    slider = page.locator('[data-testid="slider-aws-logo"]')
    area = slider.bounding_box()
    y = area["y"] + area["height"] / 2
    page.mouse.move(area["x"] + area["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.3, y, steps=5)
    page.mouse.move(area["x"] - 30, y, steps=5)
    page.mouse.up()
    assert slider.input_value() == "0"
    assert page.inner_text('#label-list li[data-label] .slider-value >> nth=0') == "0"
    assert list_states(page) == [["undecided", "false"], ["undecided", "false"]]

    page.keyboard.press("Tab")  # the first box is selected: arrows on the slider must not move it
    slider.focus()
    for _ in range(35):
        page.keyboard.press("ArrowRight")
    assert slider.input_value() == "35"
    assert page.evaluate("document.activeElement.dataset.testid") == "slider-aws-logo"
    assert list_states(page) == [["undecided", "false"], ["undecided", "true"]]
    assert page.inner_text("#box-list li >> nth=0 >> .box-geom") == "100×50 at 10,20"


def test_an_accepted_box_below_the_slider_stays_drawn_and_tab_reaches_it(login_page, live_server, reviewer,
                                                                          iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    low = make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    assert drawn_boxes(page) == 1
    page.click("#hidden-toggle")
    page.click("#hidden-box-list li")
    page.keyboard.press("a")
    page.keyboard.press("Escape")
    assert list_states(page) == [["undecided", "false"], ["accepted", "false"]]
    assert drawn_boxes(page) == 2
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert selected_row(page) == ["accepted", "false"]
    page.keyboard.press("ArrowLeft")
    assert selected_row(page) == ["adjusted", "false"]
    assert drawn_boxes(page) == 2
    submit_with(page, "Enter")
    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 10.0, 20.0, 100.0, 50.0, "accepted", False),
                            ("aws-logo", 149.0, 100.0, 60.0, 40.0, "adjusted", False)]
    assert Review.objects.get(image=image).decisions[1]["proposal"] == low.pk


def test_enter_accepts_a_hidden_proposal_the_reviewer_selected(login_page, live_server, reviewer,
                                                              iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    page.click("#hidden-toggle")
    page.click("#hidden-box-list li")
    assert drawn_boxes(page) == 2
    submit_with(page, "Enter")
    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 10.0, 20.0, 100.0, 50.0, "accepted", False),
                            ("aws-logo", 150.0, 100.0, 60.0, 40.0, "accepted", False)]
    assert Review.objects.get(image=image).changed is False


def test_a_proposal_exactly_at_the_threshold_is_visible(login_page, live_server, reviewer, iteration, model):
    # Every label's threshold at 59.11, whatever the thresholds are keyed by.
    model.thresholds = dict.fromkeys(model.thresholds, 59.11)
    model.save(update_fields=["thresholds"])
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=59.11, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=59.109, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    assert list_states(page) == [["undecided", "false"], ["undecided", "true"]]
    assert drawn_boxes(page) == 1


def test_undo_takes_back_the_first_nudge_on_the_next_image(login_page, live_server, reviewer, iteration,
                                                           model):
    first = stored_image(iteration, "a.jpg")
    second = stored_image(iteration, "b.jpg")
    make_proposal(first, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    make_proposal(second, "aws-logo", (30, 40, 100, 50), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowRight")
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{second.pk}/")
    expect(page.locator("#box-list li")).to_have_count(1)
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#box-list li .box-geom") == "100×50 at 31,40"
    page.keyboard.press("Control+z")
    assert page.inner_text("#box-list li .box-geom") == "100×50 at 30,40"
    assert list_states(page) == [["undecided", "false"]]


def test_tab_leaves_the_boxes_for_save_and_the_other_buttons(login_page, live_server, reviewer, iteration,
                                                             model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)

    def focused():
        return page.evaluate("document.activeElement.dataset.action || document.activeElement.id")

    assert focused() == "stage"
    page.keyboard.press("Tab")
    assert selected_row(page) == ["undecided", "false"]
    page.keyboard.press("Tab")
    assert focused() == "submit"
    page.keyboard.press("Tab")
    assert focused() == "no-objects"
    page.keyboard.press("Tab")
    assert focused() == "skip"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused() == "submit"
    page.keyboard.press("Shift+Tab")  # back on the stage, whose focus ring shows
    assert focused() == "stage"
    assert page.evaluate("getComputedStyle(document.getElementById('stage')).outlineStyle") == "solid"
    # A list row is reachable and selects its box with Enter; the arrows then move the box.
    page.locator("#box-list li").first.focus()
    page.keyboard.press("Escape")
    page.locator("#box-list li").first.focus()
    page.keyboard.press("Enter")
    assert selected_row(page) == ["undecided", "false"]
    page.keyboard.press("ArrowDown")
    assert page.inner_text("#box-list li .box-geom") == "100×50 at 10,21"
    page.keyboard.press("Tab")
    assert focused() == "submit"
    submit_with(page, "Enter")  # Enter on the focused Save button saves once, through the button
    page.wait_for_selector('[data-testid="queue-empty"]')
    assert boxes(image) == [("aws-logo", 10.0, 21.0, 100.0, 50.0, "adjusted", False)]
    assert Review.objects.filter(image=image).count() == 1


def test_an_image_accepted_as_proposed_with_hidden_proposals_is_not_changed(login_page, live_server,
                                                                            reviewer, iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    make_proposal(image, "aws-logo", (150, 100, 60, 40), confidence=30, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    submit_with(page, "Enter")
    page.wait_for_selector('[data-testid="queue-empty"]')
    review = Review.objects.get(image=image)
    assert (review.changed, [d["verdict"] for d in review.decisions],
            [d.get("hidden") for d in review.decisions]) == (False, ["accepted", "rejected"], [None, True])


def test_an_owners_correction_leases_no_other_image_to_the_owner(login_page, live_server, reviewer, owner,
                                                                 project, iteration, model):
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    image = stored_image(iteration, "a.jpg")
    pending = stored_image(iteration, "b.jpg")
    proposal = make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    submit_review(image=image, reviewer=reviewer, version=0, boxes=[
        BoxInput(proposal.label_id, 10, 20, 100, 50, proposal.pk)])
    page = login_page(owner)
    page.goto(live_server.url + reverse("reviewer:image", args=[image.pk]))
    page.get_by_role("button", name="Re-open for correction").click()
    page.wait_for_selector('#review-app:not(.readonly) #editor-svg g.box')
    page.keyboard.press("Tab")
    page.keyboard.press("x")
    submit_with(page, "Enter")
    expect(page.locator('[data-testid="readonly"]')).to_contain_text("Reviewed by owner")
    assert page.url.endswith(f"/review/images/{image.pk}/")
    pending.refresh_from_db()
    assert (pending.status, pending.leased_by_id) == (Image.Status.PENDING, None)
    assert boxes(image) == []


def test_the_timer_starts_at_zero_on_the_next_image(login_page, live_server, reviewer, iteration, model):
    stored_image(iteration, "a.jpg")
    second = stored_image(iteration, "b.jpg")
    page = open_review(login_page, live_server, reviewer, iteration)
    # At least two seconds shown (a loaded machine may skip a tick), then the next image starts at 0.
    expect(page.locator("#timer")).to_have_text(re.compile(r"^0:0[2-9]$"), timeout=6000)
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{second.pk}/")
    assert page.inner_text("#timer") == "0:00"


def test_leaving_with_unsaved_edits_asks_first_but_not_after_a_save(login_page, live_server, reviewer,
                                                                    iteration, model):
    image = stored_image(iteration, "a.jpg")
    make_proposal(image, "aws-logo", (10, 20, 100, 50), confidence=90, model_version=model)
    page = open_review(login_page, live_server, reviewer, iteration)
    assert page.evaluate("dispatchEvent(new Event('beforeunload', {cancelable: true}))") is True
    page.keyboard.press("Tab")
    page.keyboard.press("x")
    assert page.evaluate("dispatchEvent(new Event('beforeunload', {cancelable: true}))") is False
    page.keyboard.press("Control+z")
    assert page.evaluate("dispatchEvent(new Event('beforeunload', {cancelable: true}))") is True
    page.keyboard.press("x")
    submit_with(page, "Enter")  # the last image: the page goes on to the queue page without asking
    page.wait_for_selector('[data-testid="queue-empty"]')


def test_a_second_tab_opens_another_image_and_both_saves_are_kept(login_page, live_server, reviewer,
                                                                 iteration, model):
    first = stored_image(iteration, "a.jpg")
    second = stored_image(iteration, "b.jpg")
    third = stored_image(iteration, "c.jpg")
    page = open_review(login_page, live_server, reviewer, iteration)
    assert page.url.endswith(f"/review/images/{first.pk}/")
    tab = page.context.new_page()
    tab.set_default_timeout(5000)
    tab.goto(f"{live_server.url}/review/logos/v2/next")
    tab.wait_for_url(f"**/review/images/{second.pk}/")
    expect(tab.locator("#message")).to_have_text(
        "a.jpg is open in another tab of yours, so this tab went on to another image.")
    first.refresh_from_db()
    assert first.leased_by_id == reviewer.pk

    page.bring_to_front()
    submit_with(page, "Enter")
    page.wait_for_url(f"**/review/images/{third.pk}/")
    tab.bring_to_front()
    submit_with(tab, "Enter")
    tab.wait_for_selector('[data-testid="queue-empty"]')
    assert sorted(Review.objects.values_list("image_id", flat=True)) == [first.pk, second.pk]
