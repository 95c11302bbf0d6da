"""Regression tests for the review workspace, fourth round (black-box report ui4): the stage bar
stays one row with every tool, a Retry after someone else's change is a conflict."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.images.models import Image

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import in_thread, open_review, stage_drawn, toast, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


@pytest.mark.parametrize("width", [1400, 1280])
def test_the_stage_bar_is_one_row_with_every_tool(page, project, login_as, width):
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=4)
    ann = add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 20, 20, 120, 120))
    mark_prelabeled(image)
    page.set_viewport_size({"width": width, "height": 900})
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    bar, hint = page.get_by_test_id("stage-bar"), page.get_by_test_id("stage-hint")
    heights = set()
    for key, tool in [("v", "select"), ("b", "brush"), ("e", "eraser"), ("l", "polygon"), ("x", "box"), ("o", "click")]:
        page.keyboard.press(key)
        expect(page.get_by_test_id(f"tool-{tool}")).to_have_class("active")
        help_button = bar.get_by_role("button", name="?", exact=True)
        first_tool = page.get_by_test_id("tool-select")
        assert abs(help_button.bounding_box()["y"] - first_tool.bounding_box()["y"]) < 2, f"{tool}: ? on a second row"
        heights.add(round(bar.bounding_box()["height"] + hint.bounding_box()["height"]))
        if tool == "click":
            expect(hint).to_contain_text("Enter saves")
        page.keyboard.press("Escape")
    # The picture's room does not change with the tool (the canvas is not resized under the user).
    assert len(heights) == 1, heights


ANNOTATION_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/$")


def test_a_retry_after_someone_elses_change_is_a_conflict_not_an_overwrite(page, project, login_as):
    """Retry sent the newest version seen, which the live update had raised to the other change's:
    the failed edit was saved over the newer class without a word."""
    from backend.annotations import services as annotation_services

    proj, owner = project
    hammer, wrench, pliers = (make_class(proj, n) for n in ("hammer", "wrench", "pliers"))
    image = make_image(proj, width=400, height=300, seed=5)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    row = page.get_by_test_id(f"object-{ann.pk}")
    row.click()

    page.route(ANNOTATION_URL, lambda r: r.fulfill(status=502, body="bad gateway") if r.request.method == "PATCH" else r.continue_())
    row.locator("select").select_option(label="wrench")  # the network fails
    failed = toast(page, "Couldn't save the class")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()

    # Meanwhile the object is changed elsewhere (another tab): the live update shows it here.
    in_thread(annotation_services.update_annotation, project=proj, annotation_id=ann.pk, user=owner,
              version=Annotation.objects.get(pk=ann.pk).version, class_id=pliers.pk)
    expect(row).to_contain_text("pliers")
    changed = Annotation.objects.get(pk=ann.pk).version

    page.unroute(ANNOTATION_URL)
    failed.get_by_role("button", name="Retry").click()
    expect(toast(page, "This object was changed elsewhere")).to_be_visible()
    saved = Annotation.objects.get(pk=ann.pk)
    assert saved.label_class_id == pliers.pk and saved.version == changed, "the newer change was kept"
    expect(row).to_contain_text("pliers")

    # An edit made now, on what is shown, saves as usual.
    row.locator("select").select_option(label="wrench")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).label_class_id == wrench.pk, what="the class saved")


def test_accept_all_refuses_objects_changed_since_they_were_shown_and_shows_them(page, project, login_as):
    """Enter sent accept-all without what the screen showed: an object changed after the reviewer
    looked (the image's version does not move with its objects) was approved unseen."""
    from django.db.models import F

    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image, later = (make_image(proj, width=400, height=300, seed=s) for s in (6, 7))
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    add_prediction(later, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    mark_prelabeled(image, later)
    login_as(owner)
    open_review(page, proj, image)
    row = page.get_by_test_id(f"object-{ann.pk}")
    expect(row).to_contain_text("hammer")
    # Changed behind the page's back (no live event reaches it).
    Annotation.objects.filter(pk=ann.pk).update(label_class=wrench, version=F("version") + 1)

    page.keyboard.press("Enter")
    expect(toast(page, "1 object on this image changed or appeared since you loaded it")).to_be_visible()
    expect(row).to_contain_text("wrench")  # shown now
    assert page.url.endswith(f"/review/{image.pk}")
    assert Annotation.objects.get(pk=ann.pk).class_review == ReviewState.PENDING, "nothing accepted unseen"

    page.keyboard.press("Enter")  # what is shown now is accepted
    expect(page).to_have_url(re.compile(rf"/review/{later.pk}$"))
    assert Annotation.objects.get(pk=ann.pk).class_review == ReviewState.ACCEPTED


def test_enter_moves_on_past_images_whose_objects_have_no_class(page, project, login_as):
    """Enter left such an image in the queue and the next one sent it back: two of them bounced."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    first, second, third = (make_image(proj, width=400, height=300, seed=s) for s in (8, 9, 10))
    add_prediction(first, None, rect_mask(300, 400, 20, 20, 120, 120))
    add_prediction(second, None, rect_mask(300, 400, 20, 20, 120, 120))
    add_prediction(third, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    mark_prelabeled(first, second, third)
    login_as(owner)
    open_review(page, proj, first)
    page.keyboard.press("Enter")
    expect(toast(page, "set aside for now")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/review/{second.pk}$"))
    stage_drawn(page, second.pk)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/review/{third.pk}$"))


def drawn_view(page) -> tuple[int, float, float, float, float, float]:
    """(image id, scale, tx, ty) the stage last drew, and the canvas's CSS size."""
    canvas = page.get_by_test_id("review-canvas")
    image, scale, tx, ty = (canvas.get_attribute("data-view") or "0:0:0:0").split(":")
    width, height = canvas.evaluate("c => [c.clientWidth, c.clientHeight]")
    return int(image), float(scale), float(tx), float(ty), width, height


def fitted(view, image_w: int, image_h: int, pad: int = 16) -> bool:
    _, scale, tx, ty, width, height = view
    want = min((width - 2 * pad) / image_w, (height - 2 * pad) / image_h)
    return abs(scale - want) < 1e-3 and abs(tx - (width - image_w * want) / 2) < 1 and abs(ty - (height - image_h * want) / 2) < 1


def test_the_next_image_opens_fitted_whatever_the_size_of_the_one_before(page, project, login_as):
    """The next image kept the previous one's zoom: a small one sat in a corner, a big one was cut off."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    big, small = make_image(proj, width=640, height=480, seed=11), make_image(proj, width=300, height=200, seed=12)
    for im, (h, w) in ((big, (480, 640)), (small, (200, 300))):
        add_prediction(im, hammer, rect_mask(h, w, 0, 0, 20, 20))  # in a corner, away from the centre
    mark_prelabeled(big, small)
    login_as(owner)
    open_review(page, proj, big)
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/review/{small.pk}$"))
    stage_drawn(page, small.pk)
    until(page, lambda: drawn_view(page)[0] == small.pk and fitted(drawn_view(page), 300, 200),
          what=f"the small image fitted to the stage (drawn {drawn_view(page)})")


def test_leaving_with_a_polygon_half_drawn_asks_first(page, project, login_as):
    """An open polygon (or an unsaved Click → SAM mask) was dropped without a word by n, Enter, a tab or Back."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    first, second = (make_image(proj, width=400, height=300, seed=s) for s in (13, 14))
    for im in (first, second):
        add_prediction(im, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(first, second)
    login_as(owner)
    open_review(page, proj, first)
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.keyboard.press("l")
    box = page.get_by_test_id("review-canvas").bounding_box()
    for dx, dy in ((-60, -40), (60, -40), (0, 50)):
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)
    page.keyboard.press("n")
    until(page, lambda: asked, what="a question before leaving")
    assert "A polygon is being drawn (3 points)" in asked[0], asked
    assert page.url.endswith(f"/review/{first.pk}")
    page.get_by_role("link", name="Dashboard").click()
    until(page, lambda: len(asked) == 2, what="the same question for a tab")
    assert page.url.endswith(f"/review/{first.pk}")

    page.keyboard.press("Escape")  # discarded on purpose: nothing to ask any more
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/review/{second.pk}$"))
    assert len(asked) == 2


def test_the_side_panel_fits_long_names_and_says_why_an_object_has_no_class(page, project, login_as):
    """A long class name widened the class picker past the panel, a long file name was cut mid-word,
    and an object without a class showed a score and margin of no class shown."""
    proj, owner = project
    long_class = make_class(proj, "отвёртка" + "-очень-длинная" * 6)
    image = make_image(proj, width=400, height=300, seed=15)
    Image.objects.filter(pk=image.pk).update(original_name="a-very-long-photo-name-from-the-camera-roll-" * 3 + ".jpg")
    classed = add_prediction(image, long_class, rect_mask(300, 400, 0, 0, 20, 20))
    unclassed = add_prediction(image, None, rect_mask(300, 400, 200, 150, 260, 200), score=0.56, margin=0.02)
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{classed.pk}").click()
    side = page.locator("aside.side")
    right = side.bounding_box()["x"] + side.bounding_box()["width"]
    picker = page.get_by_test_id(f"class-picker-{classed.pk}")
    assert picker.bounding_box()["x"] + picker.bounding_box()["width"] <= right + 1, "the picker stays inside the panel"
    assert side.evaluate("e => e.scrollWidth <= e.clientWidth"), "no sideways scroll in the panel"
    name = page.locator(".side-head b").first
    assert name.evaluate("e => e.scrollWidth > e.clientWidth && getComputedStyle(e).textOverflow === 'ellipsis'")

    row = page.get_by_test_id(f"object-{unclassed.pk}")
    expect(row.get_by_test_id(f"no-class-why-{unclassed.pk}")).to_have_text("no sure gallery match")
    expect(row).not_to_contain_text("score 0.56")


def test_a_reviewer_demoted_while_reviewing_gets_a_read_only_workspace_at_once(page, project, login_as):
    """The open workspace kept offering accept and reject; `a` then said "Accepted the mask only…"
    and "your role 'viewer' cannot review" together."""
    from backend.projects import services as project_services
    from backend.projects.models import Role

    from .seed import add_member

    proj, owner = project
    rita = make_user("rita")
    membership = add_member(proj, rita, Role.REVIEWER)
    image = make_image(proj, width=400, height=300, seed=16)
    ann = add_prediction(image, None, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(rita)
    open_review(page, proj, image)
    expect(page.get_by_test_id("workspace")).to_have_attribute("data-read-only", "false")
    page.wait_for_timeout(300)  # let the websocket join
    in_thread(project_services.change_role, project=proj, membership_id=membership.pk, role=Role.VIEWER, version=membership.version)
    expect(page.get_by_test_id("read-only-reason")).to_contain_text("your role (viewer) can only view this project")
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("a")
    page.wait_for_timeout(500)
    expect(toast(page, "Accepted the mask only")).to_have_count(0)
    assert Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.PENDING


def test_the_same_image_open_in_two_tabs_is_said_in_both(page, project, login_as):
    """Both tabs of one user could edit the image with nothing said (claims are per user)."""
    proj, owner = project
    image, other = (make_image(proj, width=400, height=300, seed=s) for s in (17, 18))
    for im in (image, other):
        add_prediction(im, make_class(proj, f"c{im.pk}"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image, other)
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id("open-elsewhere")).to_have_count(0)
    second = page.context.new_page()
    open_review(second, proj, image)
    expect(second.get_by_test_id("open-elsewhere")).to_be_visible()
    expect(page.get_by_test_id("open-elsewhere")).to_be_visible()
    open_review(second, proj, other)  # the second tab moves on: the first is alone again
    expect(page.get_by_test_id("open-elsewhere")).to_have_count(0)
    expect(second.get_by_test_id("open-elsewhere")).to_have_count(0)
    second.close()


def test_a_class_deleted_elsewhere_leaves_the_open_picker(page, project, login_as):
    """It stayed in the picker; choosing it said "Class 5 does not exist in this project"."""
    from backend.projects import services as project_services

    proj, owner = project
    hammer, spare = make_class(proj, "hammer"), make_class(proj, "spare-class")
    image = make_image(proj, width=400, height=300, seed=19)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    picker = page.get_by_test_id(f"class-picker-{ann.pk}")
    expect(picker.locator("option", has_text="spare-class")).to_have_count(1)
    page.wait_for_timeout(300)  # let the websocket join
    in_thread(project_services.delete_class, project=proj, class_id=spare.pk, version=spare.version)
    expect(picker.locator("option", has_text="spare-class")).to_have_count(0)


def test_an_annotator_is_not_offered_to_delete_an_accepted_object(page, project, login_as):
    """The server now refuses it (an accepted object left the approved export with no review)."""
    from backend.projects.models import Role

    from .seed import add_member

    proj, owner = project
    anna = make_user("anna")
    add_member(proj, anna, Role.ANNOTATOR)
    image = make_image(proj, width=400, height=300, seed=20)
    hammer = make_class(proj, "hammer")
    accepted = add_prediction(image, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    pending = add_prediction(image, hammer, rect_mask(300, 400, 100, 100, 140, 140))
    Annotation.objects.filter(pk=accepted.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    mark_prelabeled(image)
    login_as(anna)
    open_review(page, proj, image)
    expect(page.get_by_test_id(f"delete-{accepted.pk}")).to_be_disabled()
    expect(page.get_by_test_id(f"delete-{accepted.pk}")).to_have_attribute("title", re.compile("only a reviewer or admin"))
    page.get_by_test_id(f"object-{accepted.pk}").click()
    page.keyboard.press("Delete")  # the key is refused by the server, in words
    expect(toast(page, "accepted in review")).to_be_visible()
    assert Annotation.objects.filter(pk=accepted.pk).exists()
    expect(page.get_by_test_id(f"delete-{pending.pk}")).to_be_enabled()


def test_enter_on_images_with_no_objects_marks_them_done_and_moves_on(page, project, login_as):
    """No accept was sent for an image without objects: it stayed pre-labeled and Enter went back
    and forth between two such images for good."""
    proj, owner = project
    empty1, empty2, third = (make_image(proj, width=400, height=300, seed=s) for s in (21, 22, 23))
    add_prediction(third, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(empty1, empty2, third)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review/{empty1.pk}")
    expect(page.get_by_test_id("image-status")).to_have_text("prelabeled")
    seen = [empty1.pk]
    for _ in range(3):  # the queue's order is its own (most uncertain first); each image once
        expect(page.locator(f'[data-image-ready="{seen[-1]}"]')).to_have_count(1)  # Enter waits for the picture
        page.keyboard.press("Enter")
        until(page, lambda: not page.url.endswith(f"/review/{seen[-1]}"), what="the next image")
        match = re.search(r"/review/(\d+)$", page.url)
        if not match:
            break  # the queue is empty
        seen.append(int(match.group(1)))
        expect(page.get_by_test_id("image-status")).to_be_visible()
    assert sorted(seen) == sorted([empty1.pk, empty2.pk, third.pk]), seen
    assert set(Image.objects.filter(pk__in=[empty1.pk, empty2.pk]).values_list("status", flat=True)) == {"done"}


def test_the_empty_queue_says_what_was_set_aside_and_what_is_new(page, project, login_as):
    """It said "Nothing left to review" while images were set aside this session or never pre-annotated."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=24)
    add_prediction(image, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    make_image(proj, width=400, height=300, seed=25)  # new: no model looked yet
    login_as(owner)
    open_review(page, proj, image)
    page.keyboard.press("n")  # skipped: the queue has nothing else
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.get_by_test_id("queue-set-aside")).to_contain_text("1 image you skipped")
    expect(page.get_by_test_id("queue-new")).to_contain_text("1 image has not been pre-annotated yet")
    page.get_by_test_id("queue-show-set-aside").click()
    expect(page).to_have_url(re.compile(rf"/review/{image.pk}$"))


def test_an_answer_for_the_image_left_never_lands_on_the_next_one(page, project, login_as):
    """A live change's object fetched for the image just left was appended to the next image's list
    (and deleting it there deleted an object of a done image)."""
    from backend.annotations import services as annotation_services

    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    first, second = (make_image(proj, width=400, height=300, seed=s) for s in (26, 27))
    left = add_prediction(first, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    add_prediction(second, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(first, second)
    login_as(owner)
    open_review(page, proj, first)
    page.wait_for_timeout(300)  # let the websocket join

    def slow(route):
        page.wait_for_timeout(1500)
        route.continue_()

    page.route(re.compile(rf".*/api/projects/\d+/annotations/{left.pk}/$"), slow)
    in_thread(annotation_services.update_annotation, project=proj, annotation_id=left.pk, user=owner,
              version=left.version, class_id=wrench.pk)
    page.wait_for_timeout(200)  # the event is in, its object on its way
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/review/{second.pk}$"))
    page.wait_for_timeout(2500)
    expect(page.get_by_test_id(f"object-{left.pk}")).to_have_count(0)


def test_a_large_exemplar_stays_inside_the_side_panel_and_redo_says_what_it_did(page, project, login_as):
    """A 1444 px exemplar of a candidate set its grid column's width and ran out of the panel;
    redoing a new object said "Redid the deletion."."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.gallery.services import upload_exemplars
    from tests.backend.factories import image_bytes

    proj, owner = project
    hammer = make_class(proj, "hammer")
    report = upload_exemplars(project=proj, user=owner, class_id=hammer.pk,
                              files=[SimpleUploadedFile("big.png", image_bytes(1444, 1444, (200, 40, 40)))])
    exemplar = report.created[0]
    image = make_image(proj, width=400, height=300, seed=28)
    ann = add_prediction(image, None, rect_mask(300, 400, 0, 0, 20, 20),
                         candidates=[{"class_id": hammer.pk, "name": "hammer", "score": 0.41, "exemplar_id": exemplar.pk}])
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    picture = page.get_by_test_id("candidate-hammer").locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    side = page.locator("aside.side").bounding_box()
    box = picture.bounding_box()
    assert box["x"] + box["width"] <= side["x"] + side["width"] + 1 and box["width"] < 200, box

    # Undo a new object, then redo it: the message says it came back.
    page.keyboard.press("l")
    canvas = page.get_by_test_id("review-canvas").bounding_box()
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    for dx, dy in ((-40, -30), (40, -30), (0, 40)):
        page.mouse.click(cx + dx, cy + dy)
    page.keyboard.press("Enter")
    until(page, lambda: Annotation.objects.filter(image=image).count() == 2, what="the polygon saved")
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    until(page, lambda: Annotation.objects.filter(image=image).count() == 1, what="the new object undone")
    page.keyboard.press("Shift+Z")
    until(page, lambda: Annotation.objects.filter(image=image).count() == 2, what="the new object redone")
    expect(toast(page, "Redid the new object")).to_be_visible()


def test_enter_on_an_image_someone_else_holds_moves_on(page, project, login_as):
    """Enter on a held image only said it was read-only; the reviewer was stuck there."""
    from datetime import timedelta

    from django.utils import timezone

    proj, owner = project
    boris = make_user("boris")
    hammer = make_class(proj, "hammer")
    held, free = (make_image(proj, width=400, height=300, seed=s) for s in (29, 30))
    for im in (held, free):
        add_prediction(im, hammer, rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(held, free)
    Image.objects.filter(pk=held.pk).update(claimed_by=boris, claim_expires_at=timezone.now() + timedelta(minutes=5))
    login_as(owner)
    open_review(page, proj, held)
    expect(page.get_by_test_id("read-only-reason")).to_contain_text("boris has this image open")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/review/{free.pk}$"))
    assert Image.objects.get(pk=free.pk).claimed_by_id == owner.pk


def test_stepping_through_the_class_picker_with_arrow_keys_saves_once(page, project, login_as):
    """Each arrow key on the focused picker saved a class: three saves for four key presses."""
    proj, owner = project
    classes = [make_class(proj, n) for n in ("a-class", "b-class", "c-class", "d-class")]
    image = make_image(proj, width=400, height=300, seed=31)
    ann = add_prediction(image, classes[0], rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    picker = page.get_by_test_id(f"class-picker-{ann.pk}")
    picker.focus()
    for _ in range(3):
        picker.press("ArrowDown")
    page.wait_for_timeout(400)
    assert patches == [], "nothing saved while stepping"
    picker.press("Enter")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).label_class_id == classes[3].pk, what="the class saved")
    assert len(patches) == 1, patches


def test_class_search_without_a_match_says_so(page, project, login_as):
    """It showed an empty list and nothing else."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=32)
    ann = add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("/")
    page.get_by_label("search classes").fill("zebra")
    expect(page.get_by_test_id("class-search-empty")).to_have_text("No active class matches “zebra”.")
