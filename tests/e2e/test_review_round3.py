"""Regression tests for the review workspace (black-box report ui3): undo waits for the write it
takes back, a message's Undo undoes only its own deletion, fast Delete/z, failed reviews kept and
guarded, objects without a class, an image deleted while open, `p` after Back/Forward, and signing
out without a refused claim release."""
from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.images.models import Image

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import in_thread, open_review, toast, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
REVIEW_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/review/$")
DELETE_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/\?version=\d+$")


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


def slowly(page, ms: int = 700):
    """A route handler that holds the request back `ms` before sending it on (a slow server)."""
    def handler(route):
        page.wait_for_timeout(ms)
        route.continue_()
    return handler


def two_objects(proj, seed=1):
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image = make_image(proj, width=400, height=300, seed=seed)
    first = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 120, 120))
    second = add_prediction(image, wrench, rect_mask(300, 400, 200, 150, 330, 260))
    mark_prelabeled(image)
    return image, first, second


def test_z_right_after_a_review_key_waits_for_it_and_undoes_it(page, project, login_as):
    """`a` then `z` at once said "Undid the review decision." but sent nothing: the accept stuck."""
    proj, owner = project
    image, first, _ = two_objects(proj, seed=1)
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id(f"object-{first.pk}")).to_have_class(re.compile("selected"))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if REVIEW_URL.match(r.url) else None)
    page.route(REVIEW_URL, slowly(page))  # the accept is still on its way when z is pressed
    page.keyboard.press("a")
    page.keyboard.press("z")
    until(page, lambda: len(sent) == 2, what="the accept and then the undo")
    assert '"accepted"' in sent[0] and '"pending"' in sent[1], sent
    until(page, lambda: Annotation.objects.get(pk=first.pk).version == first.version + 2, what="both saved")
    row = Annotation.objects.get(pk=first.pk)
    assert (row.class_review, row.mask_review) == (ReviewState.PENDING, ReviewState.PENDING)
    expect(toast(page, "Undid the review decision")).to_be_visible()
    expect(page.get_by_test_id(f"object-{first.pk}")).to_have_attribute("data-mask-review", "pending")
    page.unroute_all(behavior="ignoreErrors")


def test_the_deleted_messages_undo_takes_back_only_that_deletion(page, project, login_as):
    """The "Object deleted" message's Undo undid a later review of another object, and stayed after z."""
    proj, owner = project
    image, first, second = two_objects(proj, seed=2)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{first.pk}").click()

    # z undoes the deletion: its message (and its Undo button) goes with it.
    page.keyboard.press("Delete")
    deleted = toast(page, "Object deleted")
    expect(deleted).to_be_visible()
    until(page, lambda: not Annotation.objects.filter(pk=first.pk).exists(), what="DELETE")
    page.keyboard.press("z")
    until(page, lambda: Annotation.objects.filter(image=image).count() == 2, what="re-created")
    expect(deleted).to_have_count(0)

    # Delete again, reject the other object, then the message's Undo: the deletion comes back,
    # the rejection stays.
    back = Annotation.objects.filter(image=image).exclude(pk=second.pk).get()
    page.get_by_test_id(f"object-{back.pk}").click()
    page.keyboard.press("Delete")
    expect(deleted.get_by_role("button", name="Undo")).to_be_visible()
    until(page, lambda: not Annotation.objects.filter(pk=back.pk).exists(), what="second DELETE")
    page.get_by_test_id(f"object-{second.pk}").click()
    page.keyboard.press("r")
    until(page, lambda: Annotation.objects.get(pk=second.pk).class_review == ReviewState.REJECTED, what="rejection")
    deleted.get_by_role("button", name="Undo").click()
    until(page, lambda: Annotation.objects.filter(image=image).count() == 2, what="the deletion undone")
    page.wait_for_timeout(500)
    row = Annotation.objects.get(pk=second.pk)
    assert (row.class_review, row.mask_review) == (ReviewState.REJECTED, ReviewState.REJECTED)
    expect(toast(page, "Undid the deletion")).to_be_visible()
    expect(toast(page, "Undid the review decision")).to_have_count(0)


def test_fast_delete_delete_and_delete_z(page, project, login_as):
    """Delete Delete: a second DELETE, a 404 and "deleted by someone else". Delete z: "Nothing to undo"."""
    proj, owner = project
    image, first, second = two_objects(proj, seed=3)
    login_as(owner)
    open_review(page, proj, image)
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" and "/annotations/" in r.url else None)
    page.route(DELETE_URL, slowly(page))

    page.get_by_test_id(f"class-label-{first.pk}").click()  # not the row's middle: its class select takes keys
    page.keyboard.press("Delete")
    page.keyboard.press("Delete")
    until(page, lambda: not Annotation.objects.filter(pk=first.pk).exists(), what="DELETE")
    page.wait_for_timeout(1200)
    assert len(deletes) == 1, deletes
    expect(page.get_by_text("deleted by someone else")).to_have_count(0)

    page.get_by_test_id(f"class-label-{second.pk}").click()
    page.keyboard.press("Delete")
    page.keyboard.press("z")  # queued behind the deletion: brings it back
    until(page, lambda: not Annotation.objects.filter(pk=second.pk).exists(), what="second DELETE", timeout=20)
    until(page, lambda: Annotation.objects.filter(image=image).count() == 1, what="re-created")
    assert Annotation.objects.get(image=image).label_class.name == "wrench"
    expect(toast(page, "Nothing to undo")).to_have_count(0)
    expect(toast(page, "Undid the deletion")).to_be_visible()
    page.unroute_all(behavior="ignoreErrors")


def test_a_review_the_server_failed_stays_as_not_saved_and_leaving_asks(page, project, login_as):
    """Failed reviews vanished from the screen and `n` dropped them without a word."""
    proj, owner = project
    image, first, second = two_objects(proj, seed=4)
    other = make_image(proj, width=400, height=300, seed=5)
    add_prediction(other, make_class(proj, "saw"), rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(other)
    login_as(owner)
    open_review(page, proj, image)
    here = page.url

    page.route(REVIEW_URL, lambda r: r.fulfill(status=502, body="bad gateway"))
    page.get_by_test_id(f"object-{first.pk}").click()
    page.keyboard.press("r")
    page.keyboard.press("Tab")
    page.keyboard.press("r")
    failed = toast(page, "Couldn't save the review")
    expect(failed).to_be_visible()
    for ann in (first, second):
        row = page.get_by_test_id(f"object-{ann.pk}")
        expect(row.get_by_test_id(f"review-not-saved-{ann.pk}")).to_be_visible()
        expect(row.locator(".rv-rejected")).to_have_count(2)  # shown as decided, marked not saved

    page.keyboard.press("n")
    expect(toast(page, "A review decision is not saved yet")).to_be_visible()
    page.wait_for_timeout(300)
    assert page.url == here
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("link", name="Dashboard").click()
    until(page, lambda: asked, what="a confirm before leaving")
    assert "review decision is not saved" in asked[0]
    assert page.url == here

    # One Retry sends both once the server is back.
    page.unroute(REVIEW_URL)
    failed.get_by_role("button", name="Retry").click()
    until(page, lambda: all(Annotation.objects.get(pk=a.pk).class_review == ReviewState.REJECTED for a in (first, second)),
             what="both reviews saved on retry")
    expect(page.locator("[data-not-saved]")).to_have_count(0)
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/{other.pk}$"))


def test_an_object_without_a_class_offers_no_class_accept_and_a_accepts_its_mask(page, project, login_as):
    """"✓ class", c and a were offered on an object without a class and always answered 400."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=6)
    ann = add_prediction(image, None, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image)
    login_as(owner)
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 400 else None)
    open_review(page, proj, image)
    accept_class = page.get_by_test_id(f"object-{ann.pk}").get_by_role("button", name="✓ class")
    expect(accept_class).to_be_disabled()
    expect(accept_class).to_have_attribute("title", re.compile("Choose a class"))

    page.keyboard.press("c")
    expect(toast(page, "no class yet")).to_be_visible()
    page.keyboard.press("a")
    until(page, lambda: Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.ACCEPTED, what="the mask accepted")
    assert Annotation.objects.get(pk=ann.pk).class_review == ReviewState.PENDING
    expect(toast(page, "Accepted the mask only")).to_be_visible()
    assert refused == []


def test_an_image_deleted_while_open_says_so_and_moves_on(page, project, login_as):
    """The page did not react to the deletion; Enter said "Image not found" and stayed."""
    from backend.images import services as image_services

    proj, owner = project
    hammer = make_class(proj, "hammer")
    first, second, third = (make_image(proj, width=300, height=200, seed=s) for s in (7, 8, 9))
    anns = {im.pk: add_prediction(im, hammer, rect_mask(200, 300, 10, 10, 60, 60)) for im in (first, second, third)}
    mark_prelabeled(first, second, third)
    login_as(owner)

    # Live: someone deletes the open image.
    open_review(page, proj, first)
    page.wait_for_timeout(300)  # let the websocket join the project group
    boris = make_user("boris")
    # An admin takes it from under its holder on purpose (a held image is deleted only when forced).
    in_thread(image_services.delete_image, project=proj, image_id=first.pk,
              version=Image.objects.get(pk=first.pk).api_version, user=boris, force=True)
    workspace = page.get_by_test_id("workspace")
    expect(workspace).to_have_attribute("data-gone", "true")
    # The event names who (it said "someone else" even when the deleter was known).
    expect(page.get_by_test_id("read-only-reason")).to_contain_text("This image was deleted by boris.")
    expect(page.get_by_test_id("tool-brush")).to_be_disabled()
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile(rf"/review/{first.pk}$"))
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/\d+$"))
    expect(toast(page, "Image not found")).to_have_count(0)

    # No event (deleted without one): a 404 on a write tells the same.
    open_review(page, proj, second)
    expect(page.get_by_test_id(f"object-{anns[second.pk].pk}")).to_have_class(re.compile("selected"))
    Image.objects.filter(pk=second.pk).delete()
    page.keyboard.press("a")
    expect(workspace).to_have_attribute("data-gone", "true")
    expect(toast(page, "This image was deleted by someone else")).to_be_visible()
    page.get_by_test_id("gone-next").click()
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/{third.pk}$"))


def test_p_after_back_and_forward_opens_the_image_seen_before(page, project, login_as):
    """After browser Back/Forward `p` did nothing at all."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    images = [make_image(proj, width=300, height=200, seed=s) for s in (10, 11, 12)]
    for im in images:
        add_prediction(im, hammer, rect_mask(200, 300, 10, 10, 60, 60))
    mark_prelabeled(*images)
    login_as(owner)
    open_review(page, proj, images[0])
    seen = [page.url]
    for _ in range(2):
        page.keyboard.press("n")
        expect(page).not_to_have_url(seen[-1])
        expect(page.locator("[data-overlays-ready]")).to_have_count(1)
        seen.append(page.url)
    page.go_back()
    expect(page).to_have_url(seen[1])
    page.go_back()
    expect(page).to_have_url(seen[0])
    page.go_forward()
    expect(page).to_have_url(seen[1])
    expect(page.get_by_test_id("workspace")).to_be_visible()
    page.keyboard.press("p")
    expect(page).to_have_url(seen[0])

    # A freshly opened workspace has seen nothing before: p says so.
    page.reload()
    expect(page.locator("[data-overlays-ready]")).to_have_count(1)
    page.keyboard.press("p")
    expect(toast(page, "No previous image")).to_be_visible()


def test_signing_out_from_the_workspace_sends_no_refused_claim_release(page, project, login_as):
    """The page released its claim after the session had ended: a 403 on every sign-out."""
    proj, owner = project
    image, _, _ = two_objects(proj, seed=13)
    login_as(owner)
    open_review(page, proj, image)

    def held() -> bool:
        row = Image.objects.get(pk=image.pk)
        return bool(row.claimed_by_id and row.claim_expires_at and row.claim_expires_at > timezone.now())

    until(page, held, what="claim")
    page.wait_for_timeout(500)  # the next image's prefetch is done
    releases: list[str] = []
    page.on("request", lambda r: releases.append(r.url) if r.method == "DELETE" and "/claim/" in r.url else None)
    refused: list[str] = []
    page.on("response", lambda r: refused.append(f"{r.request.method} {r.url}") if r.status == 403 else None)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("input[name=username]")).to_be_visible()
    page.wait_for_timeout(800)
    assert releases == [] and refused == [], (releases, refused)
    assert not held()  # the server released it on sign-out

