"""Review workspace, round 16: a stage that is resized while its image is still fitted fits again
(narrowing the window kept the wide fit, so the image's right side was cut off); a stage the
reviewer zoomed keeps their zoom."""
from __future__ import annotations

import pytest

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, stage_drawn, until
from .test_review_round4 import drawn_view, fitted

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def two_objects_open(page, login_as, name: str, seed: int):
    """A project with one 400x300 image holding two pending objects, open in the workspace."""
    owner = make_user("olga")
    proj = make_project(owner, name=name)
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=seed)
    first = add_prediction(image, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    second = add_prediction(image, hammer, rect_mask(300, 400, 100, 100, 140, 140))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    return first, second


def test_a_fitted_image_fits_again_when_the_window_narrows(page, login_as):
    owner = make_user("olga")
    proj = make_project(owner, name="Resize")
    image = make_image(proj, width=640, height=480, seed=16)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(480, 640, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    until(page, lambda: fitted(drawn_view(page), 640, 480), what=f"fitted at first ({drawn_view(page)})")
    wide = drawn_view(page)

    page.set_viewport_size({"width": 1000, "height": 700})
    until(page, lambda: drawn_view(page)[4] < wide[4] and fitted(drawn_view(page), 640, 480),
          what=f"fitted to the narrower stage (drawn {drawn_view(page)}, was {wide})")

    # Zoomed by the reviewer: a resize keeps their scale.
    box = page.get_by_test_id("review-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    until(page, lambda: not fitted(drawn_view(page), 640, 480), what="zoomed in")
    _, zoomed, _, _, narrow_width, _ = drawn_view(page)
    page.set_viewport_size({"width": 1300, "height": 850})
    until(page, lambda: drawn_view(page)[4] > narrow_width, what="the stage widened")
    page.wait_for_timeout(200)
    assert drawn_view(page)[1] == pytest.approx(zoomed), drawn_view(page)


def test_keyboard_users_reach_the_controls_with_f6(page, login_as):
    """Tab stepped objects everywhere, so keyboard-only users never reached a button of the
    workspace (black-box round 14, F4): F6 moves focus into the tool bar / side panel / header, Tab
    then moves between controls, and Esc gives Tab back to the objects."""
    first, second = two_objects_open(page, login_as, "Keys", 17)
    active = "() => { const a = document.activeElement; return a ? a.tagName + ':' + (a.closest('[data-testid=stage-bar]') ? 'bar' : a.closest('aside.side') ? 'side' : a.closest('header.topbar') ? 'header' : 'other') : '' }"

    page.keyboard.press("F6")
    assert page.evaluate(active) == "BUTTON:bar"
    seen = []
    for _ in range(4):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)"))
    assert len(set(seen)) == 4 and not any(s.startswith("<body") for s in seen), seen  # focus moved control to control
    page.keyboard.press("F6")
    assert page.evaluate(active).endswith(":side")
    page.keyboard.press("Shift+F6")
    assert page.evaluate(active).endswith(":bar")

    page.keyboard.press("Escape")  # back to the stage: Tab steps objects again
    assert page.evaluate(active) == "BODY:other"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    until(page, lambda: "selected" in (page.get_by_test_id(f"object-{second.pk}").get_attribute("class") or "")
          or "selected" in (page.get_by_test_id(f"object-{first.pk}").get_attribute("class") or ""),
          what="Tab selects an object again")
    assert page.evaluate(active) == "BODY:other"


def test_emptying_the_last_page_of_images_shows_the_page_before(page, login_as):
    """Deleting every row of page 2 left them listed under "Couldn't load images: There is no page
    2; the last is 1", with the old count (black-box round 16)."""
    import re

    from playwright.sync_api import expect

    from backend.images.models import Image

    from .steps import toast

    owner = make_user("olga")
    proj = make_project(owner, name="Many")
    images = [make_image(proj, width=16, height=12, seed=s) for s in range(102)]
    page.on("dialog", lambda d: d.accept())
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images?page=2")
    expect(page.get_by_text("102 images")).to_be_visible()
    page.get_by_label("select every image on this page").check()
    page.get_by_test_id("delete-selected").click()
    expect(toast(page, "Deleted 2 images")).to_be_visible()
    expect(page.get_by_text("100 images")).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"page=2"))
    expect(page.get_by_test_id(f"pick-image-{images[0].pk}")).to_be_visible()
    expect(page.get_by_test_id(f"pick-image-{images[-1].pk}")).to_have_count(0)
    expect(toast(page, "Couldn't load images")).to_have_count(0)
    assert Image.objects.filter(project=proj).count() == 100


def test_offline_a_failed_deletion_offers_retry_and_goes_when_the_connection_is_back(page, login_as):
    """Black-box round 16: offline, a failed deletion had no Retry (reviews had), nothing was sent
    again when the connection came back, and nothing said the browser was offline."""
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation, ReviewState

    from .steps import toasts

    gone, judged = two_objects_open(page, login_as, "Offline", 18)
    page.context.set_offline(True)
    expect(page.get_by_test_id("offline")).to_be_visible()
    page.get_by_test_id(f"object-{gone.pk}").click()
    page.keyboard.press("Delete")
    failed = toasts(page).filter(has_text="Couldn't save the deletion")
    expect(failed).to_have_count(1)
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    page.get_by_test_id(f"object-{judged.pk}").click()
    page.keyboard.press("r")
    expect(toasts(page).filter(has_text="Couldn't save the review")).to_have_count(1)
    assert Annotation.objects.filter(pk=gone.pk).exists()

    page.context.set_offline(False)  # back: both are sent again without a click
    expect(page.get_by_test_id("offline")).to_have_count(0)
    until(page, lambda: not Annotation.objects.filter(pk=gone.pk).exists(), what="the deletion sent again")
    until(page, lambda: Annotation.objects.get(pk=judged.pk).class_review == ReviewState.REJECTED, what="the review sent again")
    expect(toasts(page).filter(has_text="Couldn't save")).to_have_count(0)
    expect(page.get_by_test_id(f"object-{gone.pk}")).to_have_count(0)


def test_a_keyboard_user_types_a_class_into_the_class_select(page, login_as):
    """Black-box round 16b: reached with F6 / Tab, typing 'circle' in the class select ran review
    shortcuts (accepted the class, rejected the mask, opened History); Esc left a keyboard step
    shown that was never saved."""
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation, ReviewState

    owner = make_user("olga")
    proj = make_project(owner, name="Typing")
    square, circle = make_class(proj, "square"), make_class(proj, "circle")
    image = make_image(proj, width=400, height=300, seed=19)
    obj = add_prediction(image, square, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    page.get_by_test_id(f"object-{obj.pk}").click()
    page.keyboard.press("F6")
    page.keyboard.press("F6")  # the side panel
    picker = page.get_by_test_id(f"class-picker-{obj.pk}")
    for _ in range(30):
        if page.evaluate("() => document.activeElement?.getAttribute('aria-label')") == "class of the object":
            break
        page.keyboard.press("Tab")
    expect(picker).to_be_focused()
    page.keyboard.press("Home")  # a keyboard step (to the first class, circle), shown but not saved
    expect(picker).to_have_value(str(circle.pk))
    page.keyboard.press("Escape")  # the unsaved step is taken back; focus stays (a second Esc leaves)
    expect(picker).to_have_value(str(square.pk))
    expect(picker).to_be_focused()
    page.keyboard.type("circle", delay=50)
    expect(picker).to_have_value(str(circle.pk))
    page.wait_for_timeout(300)
    fresh = Annotation.objects.get(pk=obj.pk)
    assert (fresh.label_class_id, fresh.class_review, fresh.mask_review) == (square.pk, ReviewState.PENDING, ReviewState.PENDING)
    page.keyboard.press("Enter")  # saved on Enter
    until(page, lambda: Annotation.objects.get(pk=obj.pk).label_class_id == circle.pk, what="the typed class saved")
    assert Annotation.objects.get(pk=obj.pk).mask_review == ReviewState.PENDING
    expect(page.get_by_test_id("history")).to_have_count(0)  # no "i" reached the workspace


def test_removing_a_member_another_admin_removed_clears_the_row(page, login_as):
    """Black-box round 16b: "Couldn't remove ann1: Membership not found." and the row stayed for good."""
    from playwright.sync_api import expect

    from backend.projects.models import Membership

    from .seed import add_member
    from .steps import toast

    owner, ann = make_user("olga"), make_user("ann1")
    proj = make_project(owner, name="Members")
    add_member(proj, ann, "annotator")
    page.on("dialog", lambda d: d.accept())
    login_as(owner)
    page.goto(f"/p/{proj.pk}/members")
    row = page.get_by_test_id("member-ann1")
    expect(row).to_be_visible()
    Membership.objects.filter(project=proj, user=ann).delete()  # another admin, meanwhile
    row.get_by_role("button", name="Remove").click()
    expect(toast(page, "ann1 was already removed")).to_be_visible()
    expect(page.get_by_test_id("member-ann1")).to_have_count(0)
    expect(toast(page, "Couldn't remove")).to_have_count(0)


def test_a_window_widened_in_small_steps_refits_the_image(page, login_as):
    """Black-box round 16b: each step under a fifth, the image stayed at 87 % of its fit in a corner."""
    owner = make_user("olga")
    proj = make_project(owner, name="Widen")
    image = make_image(proj, width=640, height=480, seed=20)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(480, 640, 0, 0, 20, 20))
    mark_prelabeled(image)
    page.set_viewport_size({"width": 1000, "height": 900})
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    until(page, lambda: fitted(drawn_view(page), 640, 480), what="fitted at first")
    for width in (1060, 1120, 1180, 1240, 1300, 1360):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
    until(page, lambda: fitted(drawn_view(page), 640, 480), what=f"fitted after widening step by step ({drawn_view(page)})")
