"""Workspace journeys in a real browser: undo a delete, Box → SAM as a new object with the gallery's
class, claims released on leaving, read-only mode for a viewer."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.gallery.services import upload_exemplars
from backend.images.models import Image
from tests.backend.factories import synthetic_png
from tests.backend.test_segment_proposal import segment_worker  # noqa: F401 (fixture)

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, stage_drawn, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-workspace")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def claimed_by(image) -> str | None:
    row = Image.objects.select_related("claimed_by").get(pk=image.pk)
    live = row.claimed_by_id and row.claim_expires_at and row.claim_expires_at > timezone.now()
    return row.claimed_by.username if live else None


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


def test_delete_then_z_restores_the_object(page, project, login_as):
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image = make_image(proj, width=400, height=300, seed=11)
    first = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    second = add_prediction(image, wrench, rect_mask(300, 400, 200, 150, 330, 260))
    Annotation.objects.filter(pk=second.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)

    page.get_by_test_id(f"object-{second.pk}").click()
    page.keyboard.press("Delete")
    wait_for(lambda: not Annotation.objects.filter(pk=second.pk).exists(), what="DELETE")
    expect(page.get_by_test_id(f"object-{second.pk}")).to_have_count(0)

    page.keyboard.press("z")
    wait_for(lambda: Annotation.objects.filter(image=image).count() == 2, what="re-create")
    back = Annotation.objects.filter(image=image).exclude(pk=first.pk).get()
    assert back.pk == second.pk  # the same object back under its own id (round 11), with its mask, class and review states
    assert back.mask_rle["counts"] == second.mask_rle["counts"] and back.label_class_id == wrench.pk
    wait_for(lambda: Annotation.objects.get(pk=back.pk).mask_review == ReviewState.ACCEPTED, what="review restored")
    assert Annotation.objects.get(pk=back.pk).class_review == ReviewState.ACCEPTED
    row = page.get_by_test_id(f"object-{back.pk}")
    expect(row).to_have_attribute("data-class", "wrench")
    shot(page, "undo-delete")

    # Redo deletes the restored object again; undo brings it back again.
    page.keyboard.press("Shift+Z")
    wait_for(lambda: not Annotation.objects.filter(pk=back.pk).exists(), what="redo DELETE")
    page.keyboard.press("Control+z")
    wait_for(lambda: Annotation.objects.filter(image=image).count() == 2, what="second re-create")

    # A class change is undone as a normal versioned write.
    page.get_by_test_id(f"object-{first.pk}").click()
    page.keyboard.press("/")
    page.keyboard.type("wre")
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.get(pk=first.pk).label_class_id == wrench.pk, what="class PATCH")
    expect(page.get_by_label("search classes")).to_have_count(0)
    changed = Annotation.objects.get(pk=first.pk)
    assert changed.class_review == ReviewState.ACCEPTED  # a reviewer's class choice accepts it
    page.keyboard.press("z")
    # Undo takes back the class and the acceptance that came with it, as versioned writes.
    wait_for(lambda: Annotation.objects.get(pk=first.pk).class_review == ReviewState.PENDING, what="class undo")
    undone = Annotation.objects.get(pk=first.pk)
    assert undone.label_class_id == hammer.pk and undone.version > changed.version
    expect(page.get_by_test_id(f"object-{first.pk}")).to_have_attribute("data-class", "hammer")


def test_box_sam_new_object_gets_the_gallery_class_and_keeps_the_first_mask(page, project, login_as, segment_worker):  # noqa: F811
    proj, owner = project
    type(proj).objects.filter(pk=proj.pk).update(unknown_threshold=0.0, min_margin=0.0)
    anvil, hammer, wrench = make_class(proj, "anvil"), make_class(proj, "hammer"), make_class(proj, "wrench")
    for label, seeds in ((hammer, (101, 102)), (wrench, (103,))):
        upload_exemplars(project=proj, user=owner, files=[SimpleUploadedFile(f"{label.name}{s}.png", synthetic_png(s)) for s in seeds],
                         class_id=label.pk)
    image = make_image(proj, width=400, height=300, seed=12)
    first = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id(f"object-{first.pk}")).to_have_class("object selected")  # something is selected

    page.keyboard.press("x")
    mode = page.get_by_test_id("box-mode")
    expect(mode).to_have_attribute("data-mode", "new")  # the default: a box adds an object
    page.keyboard.press("t")
    expect(mode).to_have_attribute("data-mode", "replace")
    shot(page, "sam-mode-replace")
    page.get_by_role("radio", name="New object").click()
    expect(mode).to_have_attribute("data-mode", "new")

    box = page.get_by_test_id("review-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx + 20, cy + 20)
    page.mouse.down()
    page.mouse.move(cx + 100, cy + 80, steps=5)
    page.mouse.up()
    expect(page.get_by_test_id("sam-busy")).to_be_visible()
    shot(page, "sam-busy")
    wait_for(lambda: Annotation.objects.filter(image=image).count() == 2, timeout=90, what="new object")
    expect(page.get_by_test_id("sam-busy")).to_have_count(0, timeout=20_000)
    expect(page.locator(".note").filter(has_text="Asking SAM")).to_have_count(0)

    created = Annotation.objects.filter(image=image).exclude(pk=first.pk).get()
    assert created.label_class_id in (hammer.pk, wrench.pk)  # from the gallery, never "anvil" (first by name)
    assert created.class_review == ReviewState.PENDING
    kept = Annotation.objects.get(pk=first.pk)
    assert kept.mask_rle == first.mask_rle and kept.version == first.version
    row = page.get_by_test_id(f"object-{created.pk}")
    expect(row).to_have_class("object selected")
    expect(row).to_have_attribute("data-class", created.label_class.name)
    shot(page, "sam-new-object")

    # Undo removes the new object.
    page.keyboard.press("z")
    wait_for(lambda: not Annotation.objects.filter(pk=created.pk).exists(), what="undo of the new object")


def test_leaving_the_workspace_releases_the_claim(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    images = [make_image(proj, width=200, height=150, seed=s) for s in (21, 22)]
    for im in images:
        add_prediction(im, hammer, rect_mask(150, 200, 20, 20, 100, 100))
    mark_prelabeled(*images)
    login_as(owner)

    # A route change (the Queue/dashboard link) releases it.
    open_review(page, proj, images[0])
    wait_for(lambda: claimed_by(images[0]) == "olga", what="claim")
    page.get_by_role("link", name="Images", exact=True).click()
    wait_for(lambda: claimed_by(images[0]) is None, what="release on route change")

    # Closing the tab releases it (keepalive on pagehide).
    open_review(page, proj, images[0])
    wait_for(lambda: claimed_by(images[0]) == "olga", what="claim again")
    second = page.context.new_page()
    page.close()
    wait_for(lambda: claimed_by(images[0]) is None, what="release on tab close")

    # Accepting the last image of the queue releases it too.
    Image.objects.filter(pk=images[0].pk).update(status="done")
    second.goto(f"/p/{proj.pk}/review/{images[1].pk}")
    stage_drawn(second, images[1].pk)
    wait_for(lambda: claimed_by(images[1]) == "olga", what="claim of the last image")
    second.get_by_test_id("accept-all").click()
    expect(second.get_by_test_id("queue-empty")).to_be_visible()
    wait_for(lambda: claimed_by(images[1]) is None, what="release after the last image")
    expect(second.locator("svg.celebrate")).to_be_visible()
    second.screenshot(path=str(SHOTS / "queue-empty.png"))


def test_viewer_sees_a_read_only_banner_and_disabled_tools(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    viewer = make_user("vera")
    add_member(proj, viewer, "viewer")
    image = make_image(proj, width=300, height=200, seed=23)
    ann = add_prediction(image, hammer, rect_mask(200, 300, 20, 20, 120, 120))
    mark_prelabeled(image)
    login_as(viewer)
    open_review(page, proj, image)
    banner = page.get_by_test_id("locked")
    expect(banner).to_contain_text("your role (viewer) can only view")
    expect(banner.locator("svg")).to_be_visible()  # the lock is an icon, not an emoji
    for tool in ("brush", "eraser", "box"):
        expect(page.get_by_test_id(f"tool-{tool}")).to_be_disabled()
    expect(page.get_by_test_id("workspace")).to_have_attribute("data-read-only", "true")
    cursor = page.get_by_test_id("review-canvas").evaluate("c => getComputedStyle(c).cursor")
    assert cursor == "not-allowed"
    page.keyboard.press("Delete")
    expect(page.locator(".note").filter(has_text="only view")).to_be_visible()
    assert Annotation.objects.filter(pk=ann.pk).exists()
    shot(page, "read-only-viewer")


def test_claimed_image_banner_names_the_holder_and_the_image_is_taken_when_they_let_go(page, project, login_as):
    """Once the holder lets go the waiting page claims the image: it turned editable without
    claiming it, and the next person to open it took it and turned this page read-only mid-work."""
    from django.test import Client

    proj, owner = project
    hammer = make_class(proj, "hammer")
    other = make_user("boris")
    add_member(proj, other, "reviewer")
    image = make_image(proj, width=300, height=200, seed=24)
    add_prediction(image, hammer, rect_mask(200, 300, 20, 20, 120, 120))
    mark_prelabeled(image)
    Image.objects.filter(pk=image.pk).update(claimed_by=other, claim_expires_at=timezone.now() + timedelta(minutes=5))
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id("read-only-reason")).to_contain_text("boris has this image open")
    expect(page.get_by_test_id("tool-box")).to_be_disabled()
    shot(page, "read-only-claimed")
    boris = Client()
    boris.force_login(other)
    assert boris.delete(f"/api/projects/{proj.pk}/images/{image.pk}/claim/").status_code == 200  # boris moves on
    expect(page.get_by_test_id("workspace")).to_have_attribute("data-read-only", "false")
    wait_for(lambda: claimed_by(image) == "olga", timeout=5, what="the waiting page's claim")


def to_screen(page, image, x: float, y: float) -> tuple[float, float]:
    """Image pixel → page coordinates of the fitted canvas (canvas/viewport.ts fitView, pad 16)."""
    box = page.get_by_test_id("review-canvas").bounding_box()
    scale = min((box["width"] - 32) / image.width, (box["height"] - 32) / image.height)
    tx, ty = (box["width"] - image.width * scale) / 2, (box["height"] - image.height * scale) / 2
    return box["x"] + tx + x * scale, box["y"] + ty + y * scale


def test_polygon_tool_draws_cuts_holes_and_moves_vertices(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=25)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 140, 140))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.keyboard.press("l")

    # A new object: three clicks, closed with Enter (sent as the API's polygons).
    for x, y in ((200, 60), (360, 60), (360, 260)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(image=image).count() == 2, what="polygon object")
    tri = Annotation.objects.filter(image=image).exclude(pk=ann.pk).get()
    assert abs(tri.area - 160 * 200 / 2) < 400 and tri.label_class_id is None
    shot(page, "polygon-new")

    # A hole in the first object: Alt at the first click, closed on the first vertex.
    page.get_by_test_id(f"object-{ann.pk}").click()
    area = Annotation.objects.get(pk=ann.pk).area
    page.keyboard.down("Alt")
    page.mouse.click(*to_screen(page, image, 60, 60))
    page.keyboard.up("Alt")
    for x, y in ((100, 60), (100, 100), (60, 100)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.mouse.click(*to_screen(page, image, 60.5, 60.5))
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).area == area - 40 * 40, what="hole")
    shot(page, "polygon-hole")

    # Drag the outline's bottom-right vertex out: the mask grows, the hole stays.
    area = Annotation.objects.get(pk=ann.pk).area
    page.mouse.move(*to_screen(page, image, 140, 140))
    page.mouse.down()
    page.mouse.move(*to_screen(page, image, 180, 180), steps=6)
    page.mouse.up()
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).area > area + 1000, what="vertex move")
    from pycocotools import mask as mask_utils

    m = mask_utils.decode({"size": ann.mask_rle["size"], "counts": Annotation.objects.get(pk=ann.pk).mask_rle["counts"].encode()})
    assert m[80, 80] == 0 and m[150, 150] == 1  # hole kept, new corner filled
    shot(page, "polygon-vertex")
    page.keyboard.press("z")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).area == area, what="undo of the vertex move")


def test_history_shows_changes_and_restores_a_version(page, project, login_as):
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image = make_image(proj, width=400, height=300, seed=26)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 140, 140))
    mark_prelabeled(image)
    original = ann.mask_rle["counts"]
    login_as(owner)
    open_review(page, proj, image)

    page.keyboard.press("/")  # a class change …
    page.keyboard.type("wre")
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).label_class_id == wrench.pk, what="class PATCH")
    expect(page.get_by_label("search classes")).to_have_count(0)
    page.keyboard.press("l")  # … then a hole cut with the polygon tool
    page.keyboard.down("Alt")
    page.mouse.click(*to_screen(page, image, 60, 60))
    page.keyboard.up("Alt")
    for x, y in ((100, 60), (100, 100), (60, 100)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).mask_rle["counts"] != original, what="hole")
    page.keyboard.press("v")

    page.keyboard.press("i")
    panel = page.get_by_test_id("history")
    expect(panel.locator("li.history-item")).to_have_count(2)
    newest, older = panel.locator("li.history-item").nth(0), panel.locator("li.history-item").nth(1)
    expect(older).to_contain_text("class: hammer → wrench")
    expect(older).to_contain_text("olga")
    expect(newest.get_by_role("img", name="mask before")).to_be_visible()
    expect(newest.get_by_role("img", name="mask after")).to_be_visible()
    expect(newest.get_by_role("button", name="Restore this version")).to_be_disabled()  # that is how it looks now
    shot(page, "history")

    older.get_by_role("button", name="Restore this version").click()
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).mask_rle["counts"] == original, what="restore")
    restored = Annotation.objects.get(pk=ann.pk)
    assert restored.label_class_id == wrench.pk
    expect(panel.locator("li.history-item")).to_have_count(3)
    expect(panel.locator("li.history-item").nth(0)).to_have_attribute("data-action", "restored")
    shot(page, "history-restored")


def test_tool_bar_never_covers_the_picture_at_1280_px(page, project, login_as):
    """At 1280 px the bar wraps to two rows; it sat over the canvas and hid the image's top-left."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=31)
    mark_prelabeled(image)
    login_as(owner)
    page.set_viewport_size({"width": 1280, "height": 800})
    open_review(page, proj, image)
    page.keyboard.press("x")  # the box tool adds its mode switch: the widest bar
    bar = page.get_by_test_id("stage-bar").bounding_box()
    canvas = page.get_by_test_id("review-canvas").bounding_box()
    shot(page, "toolbar-1280")
    assert bar["y"] + bar["height"] <= canvas["y"] + 0.5, (bar, canvas)
    assert canvas["height"] > 300

