"""Browser, black-box round 17: an accept-all that failed offline offers Retry and is sent again
when the connection is back (it was the one write with neither); F6 and Esc reach the workspace
from the class select; a stale role change on the Members page says what happened; a demoted
admin's pages follow the new role at the first refusal."""
from __future__ import annotations

import pytest

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, stage_drawn, toast, until
from .test_review_round16 import two_objects_open

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_offline_a_failed_accept_all_offers_retry_and_goes_when_the_connection_is_back(page, login_as):
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation, ReviewState

    from .steps import toasts

    first, second = two_objects_open(page, login_as, "Offline accept", 21)
    page.context.set_offline(True)
    expect(page.get_by_test_id("offline")).to_be_visible()
    page.keyboard.press("Enter")
    failed = toasts(page).filter(has_text="Couldn't accept this image")
    expect(failed).to_have_count(1)
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    assert Annotation.objects.get(pk=first.pk).mask_review == ReviewState.PENDING

    page.context.set_offline(False)  # back: the accept is sent again without a click
    until(page, lambda: {a.mask_review for a in Annotation.objects.filter(pk__in=[first.pk, second.pk])}
          == {ReviewState.ACCEPTED}, what="the accept sent again")
    expect(toasts(page).filter(has_text="Couldn't accept this image")).to_have_count(0)


def test_f6_and_esc_leave_the_class_select(page, login_as):
    """F6 / Shift+F6 did nothing while focus was in the class select, and Esc kept focus there."""
    from playwright.sync_api import expect

    owner = make_user("olga")
    proj = make_project(owner, name="Regions")
    image = make_image(proj, width=400, height=300, seed=22)
    obj = add_prediction(image, make_class(proj, "square"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    picker = page.get_by_test_id(f"class-picker-{obj.pk}")
    picker.focus()
    expect(picker).to_be_focused()
    page.keyboard.press("F6")
    until(page, lambda: page.evaluate("() => !!document.activeElement?.closest('header.topbar')"),
          what="focus moved from the side panel's select to the next region (the page header)")
    picker.focus()
    page.keyboard.press("Escape")
    expect(picker).not_to_be_focused()


def test_a_role_change_on_a_member_removed_meanwhile_says_so(page, login_as):
    """Removed and added again by another admin, then a role change from the old list: only
    "Couldn't change ann1's role: Membership not found."."""
    from playwright.sync_api import expect

    from backend.projects.models import Membership

    owner, ann = make_user("olga"), make_user("ann1")
    proj = make_project(owner, name="Members again")
    add_member(proj, ann, "annotator")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/members")
    expect(page.get_by_test_id("member-ann1")).to_be_visible()
    Membership.objects.filter(project=proj, user=ann).delete()  # another admin, meanwhile
    add_member(proj, ann, "annotator")
    page.get_by_label("role of ann1").select_option("reviewer")
    expect(toast(page, "ann1 was removed by another admin meanwhile")).to_be_visible()
    expect(toast(page, "Membership not found")).to_have_count(0)
    assert Membership.objects.get(project=proj, user=ann).role == "annotator"


def test_a_demoted_admin_loses_the_admin_pages_at_the_first_refusal(page, login_as):
    """Demoted by another admin, an admin kept Members and Settings until a reload, each click a 403."""
    from playwright.sync_api import expect

    from backend.projects.models import Membership

    owner, bob, ann = make_user("olga"), make_user("bob"), make_user("ann1")
    proj = make_project(owner, name="Demoted")
    add_member(proj, bob, "admin")
    add_member(proj, ann, "annotator")
    login_as(bob)
    page.goto(f"/p/{proj.pk}/members")
    expect(page.get_by_test_id("member-ann1")).to_be_visible()
    bar = page.get_by_test_id("project-bar")
    expect(bar.get_by_text("Settings")).to_be_visible()
    membership = Membership.objects.get(project=proj, user=bob)
    Membership.objects.filter(pk=membership.pk).update(role="reviewer", version=membership.version + 1)
    page.get_by_label("role of ann1").select_option("reviewer")
    expect(bar.get_by_text("Settings")).to_have_count(0)
    expect(page.get_by_test_id("forbidden")).to_be_visible()


def _polygon_with_a_lost_answer(page, login_as, name: str, seed: int):
    """A polygon drawn on a fresh image whose create the server makes but whose answer is lost."""
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation

    from .steps import toasts
    from .test_workspace_journeys import to_screen

    owner = make_user("olga")
    proj = make_project(owner, name=name)
    image = make_image(proj, width=400, height=300, seed=seed)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    lost = []

    def lose_the_answer(route):
        if route.request.method == "POST" and not lost:
            route.fetch()  # the server makes the object...
            lost.append(route.request.headers.get("idempotency-key"))
            return route.abort()  # ...and the answer is lost on the way back
        return route.continue_()

    page.route("**/annotations/", lose_the_answer)
    page.keyboard.press("l")
    for x, y in ((200, 60), (360, 60), (360, 260)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    until(page, lambda: lost and Annotation.objects.filter(image=image).count() == 2, what="the object made, its answer lost")
    resend = toasts(page).filter(has_text="It is still drawn")
    expect(resend).to_have_count(1)
    return image, lost, resend


def test_a_polygon_whose_answer_was_lost_is_sent_again_as_one_object(page, login_as):
    """The server made the object but the answer never arrived: the outline was gone, and drawing
    it again made a second object. It stays drawn; Enter sends it again with the same
    Idempotency-Key, and the server answers the object it already made."""
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation

    image, lost, resend = _polygon_with_a_lost_answer(page, login_as, "Lost answer", 23)
    page.keyboard.press("Enter")
    until(page, lambda: page.locator("[data-testid^=object-]").count() == 2, what="the object listed")
    assert Annotation.objects.filter(image=image).count() == 2 and lost[0]
    expect(resend).to_have_count(0)  # sent: "press Enter" goes with it


def test_a_dropped_resend_takes_its_press_enter_message_along(page, login_as):
    """Black-box round 17b: after Esc dropped the kept outline, "press Enter to send it again" stayed,
    and Enter, as it said, accepted the whole image and left it."""
    from playwright.sync_api import expect

    from backend.images.models import Image

    image, _, resend = _polygon_with_a_lost_answer(page, login_as, "Dropped resend", 26)
    page.keyboard.press("Escape")
    expect(resend).to_have_count(0)
    assert Image.objects.get(pk=image.pk).status != "done"


def test_two_copies_picked_together_say_so(page, login_as, celery_worker):
    """A file and its copy picked in one go: the one that lost the race read "already in the
    project (already image #1)", though the project had no images before this upload."""
    from playwright.sync_api import expect

    from backend.images.models import Image
    from tests.backend.factories import image_bytes

    owner = make_user("olga")
    proj = make_project(owner, name="Copies")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/upload")
    same = image_bytes(40, 30, (9, 99, 199))
    page.set_input_files("input[name=files]", files=[
        {"name": "shape.png", "mimeType": "image/png", "buffer": same},
        {"name": "shape copy.png", "mimeType": "image/png", "buffer": same},
    ])
    duplicate = page.get_by_test_id("upload-duplicate")
    expect(duplicate).to_have_count(1, timeout=30_000)
    expect(duplicate).to_contain_text(" in this upload")
    expect(page.get_by_text("already in the project")).to_have_count(0)
    assert Image.objects.filter(project=proj).count() == 1


@pytest.mark.parametrize("objects", [0, 1])
def test_a_picture_that_arrives_late_is_drawn(page, login_as, objects):
    """Black-box round 17b: a picture slower than ~150 ms (any real network; every first open of a
    TIFF, whose display PNG is made then) arrived after the detail and objects, and nothing drew it:
    a dark stage, or masks on it, until Fit."""
    import time

    owner = make_user("olga")
    proj = make_project(owner, name=f"Late picture {objects}")
    image = make_image(proj, width=400, height=300, seed=24 + objects)
    if objects:
        add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    page.route("**/file/**", lambda route: (time.sleep(0.6), route.continue_()))
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    page.wait_for_timeout(300)
    # The middle of the stage is the picture's middle: not the stage's dark background (#1f2329).
    pixel = page.evaluate("""() => { const c = document.querySelector('[data-testid=review-canvas]');
        return Array.from(c.getContext('2d').getImageData(c.width / 2 | 0, c.height / 2 | 0, 1, 1).data); }""")
    assert pixel[:3] != [31, 35, 41], pixel
