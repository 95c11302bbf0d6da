"""Regression tests for the review workspace, sixth round (black-box report ui6)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.images.models import Image

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, toasts, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("rita")
    return make_project(owner, name="Hand tools"), owner


def test_looking_ahead_does_not_take_the_open_images_claim(page, project, login_as):
    """The next image's prefetch claimed it, which released the open image's claim: the queue
    then handed the image on screen to a second reviewer."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    first, second = (make_image(proj, width=400, height=300, seed=s) for s in (61, 62))
    for im in (first, second):
        add_prediction(im, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(first, second)
    login_as(owner)
    looked = []
    page.on("request", lambda r: looked.append(r.url) if "/images/next/" in r.url else None)
    open_review(page, proj, first)
    until(page, lambda: looked, what="the look-ahead")
    page.wait_for_timeout(800)
    claims = dict(Image.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "claimed_by_id"))
    assert claims == {first.pk: owner.pk, second.pk: None}, claims
    assert all("claim=" not in url for url in looked), looked


def _open_one_object(page, proj, owner, login_as, label_class, seed):
    """An image with one proposal of `label_class`, open in the workspace with the object selected."""
    image = make_image(proj, width=400, height=300, seed=seed)
    ann = add_prediction(image, label_class, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    return ann


def test_a_letter_on_the_focused_class_picker_is_a_review_key(page, project, login_as):
    """After a look at the picker's list, "a" went to the select's type-ahead: the first class
    starting with a was chosen and saved as an accepted class."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    make_class(proj, "a very long class name")
    ann = _open_one_object(page, proj, owner, login_as, hammer, seed=63)
    picker = page.get_by_test_id(f"class-picker-{ann.pk}")
    picker.click()  # the list opens; Escape closes it and leaves the focus on the select
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).class_review == ReviewState.ACCEPTED, what="the accept")
    ann.refresh_from_db()
    assert (ann.label_class_id, ann.mask_review) == (hammer.pk, ReviewState.ACCEPTED)
    assert not page.evaluate("document.activeElement?.tagName === 'SELECT'")


def test_a_class_chosen_with_the_mouse_leaves_the_keys_to_the_workspace(page, project, login_as):
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    ann = _open_one_object(page, proj, owner, login_as, hammer, seed=64)
    page.get_by_test_id(f"class-picker-{ann.pk}").select_option(str(wrench.pk))
    until(page, lambda: Annotation.objects.get(pk=ann.pk).label_class_id == wrench.pk, what="the class saved")
    page.keyboard.press("r")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.REJECTED, what="the reject")
    assert Annotation.objects.get(pk=ann.pk).label_class_id == wrench.pk


REVIEW_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/review/$")


def test_a_successful_retry_takes_back_the_failure_messages(page, project, login_as):
    """After one Retry saved every failed decision, "Couldn't save…" with its Retry button and
    "A review decision is not saved yet" stayed on screen, stacked over the canvas."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=65)
    first = add_prediction(image, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    second = add_prediction(image, hammer, rect_mask(300, 400, 100, 100, 140, 140))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.route(REVIEW_URL, lambda r: r.fulfill(status=502, body="bad gateway"))
    page.get_by_test_id(f"object-{first.pk}").click()
    page.keyboard.press("r")
    page.keyboard.press("Tab")
    page.keyboard.press("r")
    failed = toasts(page).filter(has_text="Couldn't save the review")
    expect(failed).to_have_count(1)
    page.keyboard.press("n")
    expect(toasts(page).filter(has_text="A review decision is not saved yet")).to_have_count(1)
    page.unroute(REVIEW_URL)
    failed.get_by_role("button", name="Retry").click()
    until(page, lambda: all(Annotation.objects.get(pk=a.pk).class_review == ReviewState.REJECTED for a in (first, second)),
          what="both reviews saved on retry")
    expect(toasts(page).filter(has_text="not saved")).to_have_count(0)
    expect(toasts(page).filter(has_text="Couldn't save")).to_have_count(0)


def test_a_picture_that_failed_to_load_is_said_on_the_stage_and_not_accepted_unseen(page, project, login_as):
    """Only a toast said the file could not be loaded; Enter then accepted both objects of a blank
    stage and marked the image done without anyone seeing it (black-box ui7)."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=66)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    picture = re.compile(rf".*/api/projects/{proj.pk}/images/{image.pk}/file/\?display=1$")
    page.route(picture, lambda r: r.fulfill(status=500, body="boom"))
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    banner = page.get_by_test_id("pixels-error")
    expect(banner).to_contain_text("The image file couldn't be loaded (500).")
    page.keyboard.press("Enter")
    expect(toasts(page).filter(has_text="accepting objects nobody has seen is refused")).to_be_visible()
    page.wait_for_timeout(300)
    assert Annotation.objects.get(pk=ann.pk).class_review == ReviewState.PENDING
    page.unroute(picture)
    banner.get_by_role("button", name="Try again").click()
    expect(page.locator(f'[data-image-ready="{image.pk}"]')).to_have_count(1)
    expect(banner).to_have_count(0)
    page.keyboard.press("Enter")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).class_review == ReviewState.ACCEPTED, what="the accept")
