"""Round 11's review defects: every failed write keeps a working Retry (a Retry on one failed
write took back the other's), a decision made after the session ended is kept and sent once the
user signs in again, and undoing a deletion brings the same object back (its id, scores,
candidates and history), not a new human-drawn one."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import brush_stroke, open_review, toast, toasts, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ANNOTATION_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/$")
PASSWORD = "pw-for-tests-123"  # tests.backend.factories.make_user's


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


def _one_object(proj, seed=111):
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image = make_image(proj, width=400, height=300, seed=seed)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 10, 10, 60, 60), score=0.52, candidates=[
        {"class_id": hammer.pk, "name": "hammer", "score": 0.52, "exemplar_id": None},
        {"class_id": wrench.pk, "name": "wrench", "score": 0.95, "exemplar_id": None},
    ])
    mark_prelabeled(image)
    return image, ann, hammer, wrench


def _fail_patches(page):
    page.route(ANNOTATION_URL, lambda r: r.fulfill(status=502, body="bad gateway") if r.request.method == "PATCH" else r.continue_())


def test_retry_on_the_class_message_also_saves_the_failed_mask_edit(page, project, login_as):
    """U1: a mask edit and a class change both failed; Retry on the class's message took back the
    mask's message too, the mask was never sent again and nothing offered to."""
    proj, owner = project
    image, ann, hammer, wrench = _one_object(proj)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    _fail_patches(page)
    brush_stroke(page)
    expect(toast(page, "Couldn't save the mask")).to_be_visible()
    page.keyboard.press("2")  # wrench, the second candidate
    class_failed = toast(page, "Couldn't save the class")
    expect(class_failed).to_be_visible()
    page.unroute(ANNOTATION_URL)
    class_failed.get_by_role("button", name="Retry").click()
    until(page, lambda: Annotation.objects.get(pk=ann.pk).label_class_id == wrench.pk, what="the class saved")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).area > ann.area, what="the mask edit saved")
    expect(toasts(page).filter(has_text="Couldn't save")).to_have_count(0)
    expect(page.get_by_test_id(f"object-{ann.pk}").locator(".badge-failed")).to_have_count(0)


def test_the_not_saved_message_offers_a_retry_that_saves_the_mask(page, project, login_as):
    """U1: with its message gone, "A mask edit is not saved yet — retry or undo it" had no Retry
    anywhere and z said "Nothing to undo": the reviewer was stuck on the image."""
    proj, owner = project
    image, ann, hammer, wrench = _one_object(proj, seed=112)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    _fail_patches(page)
    brush_stroke(page)
    failed = toast(page, "Couldn't save the mask")
    failed.get_by_label("Dismiss").click()
    expect(failed).to_have_count(0)
    page.unroute(ANNOTATION_URL)
    page.keyboard.press("Enter")
    blocked = toast(page, "A mask edit is not saved yet")
    expect(blocked).to_be_visible()
    blocked.get_by_role("button", name="Retry").click()
    until(page, lambda: Annotation.objects.get(pk=ann.pk).area > ann.area, what="the mask edit saved")
    expect(page.get_by_test_id(f"object-{ann.pk}").locator(".badge-failed")).to_have_count(0)
    expect(toast(page, "is not saved yet")).to_have_count(0)


def test_a_decision_made_after_the_session_ended_is_sent_once_signed_in_again(page, project, login_as):
    """U3: a reject pressed after the session ended was dropped (raw "Authentication credentials
    were not provided.", no Retry); after signing in the object showed pending and Enter accepted
    the mask the reviewer had rejected."""
    proj, owner = project
    image, ann, hammer, wrench = _one_object(proj, seed=113)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.context.clear_cookies()
    page.keyboard.press("r")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    said = toast(page, "Your session ended")
    expect(said).to_be_visible()
    expect(said.get_by_role("button", name="Retry")).to_be_visible()
    expect(toasts(page).filter(has_text="Authentication credentials")).to_have_count(0)
    expect(page.get_by_test_id(f"review-not-saved-{ann.pk}")).to_have_count(1)  # still on the page, under the form
    assert Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.PENDING

    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    until(page, lambda: Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.REJECTED, what="the reject saved")
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    expect(page.get_by_test_id(f"review-not-saved-{ann.pk}")).to_have_count(0)
    expect(toasts(page).filter(has_text="Your session ended")).to_have_count(0)
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_attribute("data-mask-review", "rejected")


def test_undoing_a_deletion_brings_the_same_object_back(page, project, login_as):
    """U4: z after Delete created a new object (new id, no candidates or scores, history cut off)."""
    proj, owner = project
    image, ann, hammer, wrench = _one_object(proj, seed=114)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("Delete")
    until(page, lambda: not Annotation.objects.filter(pk=ann.pk).exists(), what="the deletion")
    page.keyboard.press("z")
    until(page, lambda: Annotation.objects.filter(pk=ann.pk).exists(), what="the object back under its own id")
    expect(toast(page, "Undid the deletion")).to_be_visible()
    back = Annotation.objects.get(pk=ann.pk)
    assert Annotation.objects.filter(image=image).count() == 1  # no second, new object
    assert [c["name"] for c in back.candidates] == ["hammer", "wrench"]
    assert back.class_score == pytest.approx(0.52)
    assert back.label_class_id == hammer.pk and back.area == ann.area
    until(page, lambda: Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.PENDING, what="the review states back")
    assert Annotation.objects.get(pk=ann.pk).class_review == ReviewState.PENDING
    row = page.get_by_test_id(f"object-{ann.pk}")
    expect(row).to_be_visible()
    expect(row.get_by_test_id(f"scores-{ann.pk}")).to_contain_text("0.52")
    page.keyboard.press("Shift+Z")  # redo deletes it again
    until(page, lambda: not Annotation.objects.filter(pk=ann.pk).exists(), what="the deletion redone")
    page.keyboard.press("z")
    until(page, lambda: Annotation.objects.filter(pk=ann.pk).exists(), what="back once more")
    assert Annotation.objects.filter(image=image).count() == 1
