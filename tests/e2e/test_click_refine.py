"""Click → SAM in a real browser with the real gpu worker (tiny SAM 2): clicks on the selected object
change its mask on screen, Shift+click adds a background point, Enter saves one versioned edit
(undoable, in the history), Esc discards, and with nothing selected the clicks make a new object."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation, AnnotationEvent

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-refine")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def to_screen(page, image, x: float, y: float) -> tuple[float, float]:
    """Image pixel → page coordinates of the fitted canvas (canvas/viewport.ts fitView, pad 16)."""
    box = page.get_by_test_id("review-canvas").bounding_box()
    scale = min((box["width"] - 32) / image.width, (box["height"] - 32) / image.height)
    tx, ty = (box["width"] - image.width * scale) / 2, (box["height"] - image.height * scale) / 2
    return box["x"] + tx + x * scale, box["y"] + ty + y * scale


def canvas_png(page) -> bytes:
    page.wait_for_timeout(150)  # the stage draws on the next animation frame
    return page.get_by_test_id("review-canvas").screenshot()


def test_click_tool_refines_saves_discards_and_makes_new_objects(page, login_as, celery_worker):
    owner = make_user("kira")
    proj = make_project(owner, name="Clicks")
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=31)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 140, 140))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_class("object selected")
    before = canvas_png(page)

    page.keyboard.press("o")
    expect(page.get_by_test_id("tool-click")).to_have_class("active")
    expect(page.get_by_test_id("tool-click").locator("svg")).to_be_visible()
    hint = page.get_by_test_id("click-hint")
    page.mouse.click(*to_screen(page, image, 80, 80))
    # The first click of an image encodes it on the worker (a cold worker loads its models too).
    expect(hint).to_contain_text("1 point", timeout=90_000)
    expect(hint).to_contain_text(" ms", timeout=90_000)
    expect(page.get_by_test_id("refine-busy")).to_have_count(0)
    after_one = canvas_png(page)
    assert after_one != before  # the refined mask and the marker replace the stored mask on screen
    shot(page, "refine-one-click")
    assert Annotation.objects.get(pk=ann.pk).version == ann.version  # nothing saved yet

    # Shift+click: a background point; the answer comes from the cached embedding.
    page.keyboard.down("Shift")
    page.mouse.click(*to_screen(page, image, 300, 220))
    page.keyboard.up("Shift")
    expect(hint).to_contain_text("2 points")
    expect(hint).to_contain_text("(cached)", timeout=30_000)
    expect(page.get_by_test_id("refine-busy")).to_have_count(0)
    shot(page, "refine-shift-click")

    # Enter saves: one versioned PATCH, a history event, and the API shows it.
    events = AnnotationEvent.objects.filter(annotation_id=ann.pk).count()
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).version > ann.version, what="mask PATCH")
    saved = Annotation.objects.get(pk=ann.pk)
    assert saved.mask_rle["counts"] != ann.mask_rle["counts"] and saved.area > 0
    assert AnnotationEvent.objects.filter(annotation_id=ann.pk).count() == events + 1
    api = page.request.get(f"/api/projects/{proj.pk}/annotations/{ann.pk}/").json()
    assert api["version"] == saved.version and api["area"] == saved.area
    history = page.request.get(f"/api/projects/{proj.pk}/images/{image.pk}/events/?annotation={ann.pk}&page_size=50").json()
    assert any(e["action"] == "updated" for e in history["results"]), history
    expect(hint).not_to_contain_text("point")  # the draft is gone, the tool stays on
    shot(page, "refine-saved")

    # Esc discards a draft: nothing is written.
    page.mouse.click(*to_screen(page, image, 200, 150))
    expect(hint).to_contain_text(" ms", timeout=30_000)
    expect(hint).to_contain_text("1 point")
    page.keyboard.press("Escape")
    expect(hint).not_to_contain_text("point")
    expect(page.get_by_test_id("tool-click")).to_have_class("active")
    page.wait_for_timeout(500)
    assert Annotation.objects.get(pk=ann.pk).version == saved.version

    # z undoes the saved refine like any mask edit.
    page.keyboard.press("z")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).mask_rle["counts"] == ann.mask_rle["counts"], what="undo")
    expect(page.locator(".note").filter(has_text="Undid the mask edit")).to_be_visible()  # undo reselects its object

    # Nothing selected: the clicks make a new, unclassified object.
    page.keyboard.press("Escape")  # back to select / pan
    page.mouse.click(*to_screen(page, image, 380, 290))  # empty: deselects
    expect(page.locator(".object.selected")).to_have_count(0)
    page.keyboard.press("o")
    page.mouse.click(*to_screen(page, image, 260, 120))
    page.mouse.click(*to_screen(page, image, 40, 250), button="right")  # right click = background
    expect(hint).to_contain_text("2 points")
    expect(hint).to_contain_text("(cached)", timeout=30_000)
    expect(page.get_by_test_id("refine-busy")).to_have_count(0)
    shot(page, "refine-new-object")
    page.keyboard.press("o")  # o again saves too
    wait_for(lambda: Annotation.objects.filter(image=image).count() == 2, what="new object")
    created = Annotation.objects.filter(image=image).exclude(pk=ann.pk).get()
    assert created.label_class_id is None and created.area > 0
    expect(page.get_by_test_id(f"object-{created.pk}")).to_have_class("object selected")


def test_viewer_cannot_use_the_click_tool(page, login_as):
    owner = make_user("olav")
    proj = make_project(owner, name="Look only")
    viewer = make_user("vic")
    add_member(proj, viewer, "viewer")
    image = make_image(proj, width=300, height=200, seed=32)
    add_prediction(image, make_class(proj, "saw"), rect_mask(200, 300, 20, 20, 120, 120))
    mark_prelabeled(image)
    login_as(viewer)
    open_review(page, proj, image)
    expect(page.get_by_test_id("tool-click")).to_be_disabled()
    page.keyboard.press("o")
    expect(page.locator(".note").filter(has_text="only view")).to_be_visible()
    expect(page.get_by_test_id("tool-click")).not_to_have_class("active")
