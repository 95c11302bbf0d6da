"""Regression tests for the review workspace, ninth round (black-box report ui9): a held Enter,
Enter on a focused control, a picture not yet drawn, and a mask edit that met a class change."""
from __future__ import annotations

import re

import pytest
from django.db.models import F
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.images.models import Image, ImageStatus

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import brush_stroke, open_review, toast, toasts, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ANNOTATION_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/$")


@pytest.fixture
def project():
    owner = make_user("nina")
    return make_project(owner, name="Hand tools"), owner


def _images_with_one_object(proj, label_class, seeds):
    images = [make_image(proj, width=400, height=300, seed=s) for s in seeds]
    anns = [add_prediction(im, label_class, rect_mask(300, 400, 10, 10, 60, 60)) for im in images]
    mark_prelabeled(*images)
    return images, anns


def _accepted(anns):
    return {a.pk for a in Annotation.objects.filter(pk__in=[a.pk for a in anns], class_review=ReviewState.ACCEPTED)}


def test_holding_enter_accepts_one_image_not_a_run_of_unseen_ones(page, project, login_as):
    """Key auto-repeat: a 0.7 s hold of Enter accepted seven images, six of them on screen for
    130-230 ms."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    images, anns = _images_with_one_object(proj, hammer, (91, 92, 93, 94))
    login_as(owner)
    open_review(page, proj, images[0])
    page.keyboard.down("Enter")
    for _ in range(25):  # a held key: keydowns with `repeat` set, as a keyboard sends them
        page.wait_for_timeout(40)
        page.keyboard.down("Enter")
    page.keyboard.up("Enter")
    until(page, lambda: anns[0].pk in _accepted(anns), what="the first image's accept")
    page.wait_for_timeout(1000)
    assert _accepted(anns) == {anns[0].pk}
    assert Image.objects.filter(pk__in=[im.pk for im in images[1:]], status=ImageStatus.DONE).count() == 0


def test_enter_on_a_focused_link_or_button_is_that_controls(page, project, login_as):
    """Enter on the focused History button (after a click on it) or on a link accepted the whole
    image and moved on; the link was never followed."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    images, anns = _images_with_one_object(proj, hammer, (95, 96))
    login_as(owner)
    open_review(page, proj, images[0])
    page.get_by_test_id("history-toggle").click()
    expect(page.get_by_test_id("history")).to_be_visible()
    page.keyboard.press("Enter")  # the focused button's own action: History closes
    expect(page.get_by_test_id("history")).to_have_count(0)
    page.wait_for_timeout(500)
    assert _accepted(anns) == set()
    assert page.url.endswith(f"/review/{images[0].pk}")

    page.locator(f'a[href="/p/{proj.pk}/images"]').focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/images$"))
    assert _accepted(anns) == set()


def test_enter_before_the_picture_is_drawn_is_refused(page, project, login_as):
    """Quick presses accepted images whose picture had not been drawn yet."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    images, anns = _images_with_one_object(proj, hammer, (97,))
    login_as(owner)
    held = []
    picture = re.compile(rf".*/api/projects/{proj.pk}/images/{images[0].pk}/file/\?display=1$")
    page.route(picture, lambda r: held.append(r))  # answered below, once Enter has been tried
    page.goto(f"/p/{proj.pk}/review/{images[0].pk}")
    expect(page.locator(f'[data-overlays-ready="{images[0].pk}"]')).to_have_count(1)
    until(page, lambda: held, what="the picture's request")
    page.keyboard.press("Enter")
    expect(toast(page, "The picture is still loading")).to_be_visible()
    page.wait_for_timeout(300)
    assert _accepted(anns) == set()
    held[0].continue_()
    page.unroute(picture)
    expect(page.locator(f'[data-image-ready="{images[0].pk}"]')).to_have_count(1)
    page.keyboard.press("Enter")
    until(page, lambda: _accepted(anns) == {anns[0].pk}, what="the accept once the picture is drawn")


def test_a_mask_edit_that_met_a_class_change_elsewhere_is_saved_on_the_newer_version(page, project, login_as):
    """A stroke that failed to save was thrown away on Retry when another tab had changed only the
    object's class: "the mask was not saved", the stroke gone and undo disabled."""
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    images, anns = _images_with_one_object(proj, hammer, (98,))
    ann = anns[0]
    area_before = ann.area
    login_as(owner)
    open_review(page, proj, images[0])
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.route(ANNOTATION_URL, lambda r: r.fulfill(status=502, body="bad gateway") if r.request.method == "PATCH" else r.continue_())
    brush_stroke(page)
    failed = toast(page, "Couldn't save the mask")
    expect(failed).to_be_visible()
    # Meanwhile the class is changed elsewhere; the mask is left as it was.
    Annotation.objects.filter(pk=ann.pk).update(label_class=wrench, version=F("version") + 1)
    page.unroute(ANNOTATION_URL)
    failed.get_by_role("button", name="Retry").click()
    until(page, lambda: Annotation.objects.get(pk=ann.pk).version == ann.version + 2, what="the stroke saved")
    saved = Annotation.objects.get(pk=ann.pk)
    assert saved.label_class_id == wrench.pk  # the other change is kept
    assert saved.area > area_before  # and so is the stroke
    expect(toasts(page).filter(has_text="was not saved")).to_have_count(0)
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_attribute("data-class", "wrench")


def test_signed_out_in_another_tab_asks_to_sign_in_not_that_access_was_lost(page, project, login_as):
    """The workspace said "No access to this project (you were removed from it, or it was
    deleted)" when the user signed out in another tab, and kept saying it after signing in again."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    images, _ = _images_with_one_object(proj, hammer, (99,))
    login_as(owner)
    open_review(page, proj, images[0])
    other_tab = page.context.new_page()
    other_tab.goto("/")
    other_tab.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("sign-in-why")).to_contain_text("You were signed out")  # in the form, kept
    expect(page.get_by_test_id("project-error")).to_have_count(0)
    login_as(owner)  # signing in again goes on where the user was
    page.reload()
    expect(page.locator(f'[data-image-ready="{images[0].pk}"]')).to_have_count(1)
