"""Regression tests for the review app's guards: an unsaved mask blocks moving on, losing access to
a project is said as such, roles that cannot review are told why (no useless Retry), the class
colour picker saves once, inline rename puts the name back, and demoting yourself asks first."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.projects.models import LabelClass, Membership

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import brush_stroke, open_review, toast, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
UNSAVED = "A mask edit is not saved yet"
ANNOTATION_URL = re.compile(r".*/api/projects/\d+/annotations/\d+/$")


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


def dismiss(page, text):
    toast(page, text).get_by_label("Dismiss").click()
    expect(toast(page, text)).to_have_count(0)


def beforeunload_blocks(page) -> bool:
    return page.evaluate("() => { const e = new Event('beforeunload', { cancelable: true }); window.dispatchEvent(e); return e.defaultPrevented; }")


def test_unsaved_mask_blocks_skip_queue_and_asks_before_leaving(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=21)
    other = make_image(proj, width=400, height=300, seed=22)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 10, 10, 60, 60))
    add_prediction(other, hammer, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image, other)
    version_before = ann.version
    login_as(owner)
    open_review(page, proj, image)
    here = page.url

    page.route(ANNOTATION_URL, lambda r: r.fulfill(status=502, body="bad gateway") if r.request.method == "PATCH" else r.continue_())
    brush_stroke(page)
    failed = toast(page, "Couldn't save the mask")
    expect(failed).to_be_visible()
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()  # a 502: retrying can help

    # n, the Skip button and the Queue link are refused like Enter, with the same message.
    page.keyboard.press("n")
    expect(toast(page, UNSAVED)).to_be_visible()
    dismiss(page, UNSAVED)
    page.get_by_role("button", name="Skip").click()
    expect(toast(page, UNSAVED)).to_be_visible()
    dismiss(page, UNSAVED)
    page.get_by_test_id("queue-link").click()
    expect(toast(page, UNSAVED)).to_be_visible()
    page.wait_for_timeout(300)
    assert page.url == here

    # Another tab asks first; saying no stays here with the edit.
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("link", name="Dashboard").click()
    wait_for(lambda: asked, what="a confirm before leaving")
    assert UNSAVED in asked[0]
    assert page.url == here
    expect(page.get_by_test_id("workspace")).to_be_visible()
    # A reload or close gets the browser's own prompt.
    assert beforeunload_blocks(page)

    # Retry once the server is back: saved, and nothing blocks moving on any more.
    page.unroute(ANNOTATION_URL)
    failed.get_by_role("button", name="Retry").click()
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).version > version_before, what="mask PATCH on retry")
    expect(page.locator(".badge", has_text="unsaved")).to_have_count(0)
    assert not beforeunload_blocks(page)
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/{other.pk}$"))
    assert len(asked) == 1


def test_removed_reviewer_is_told_they_lost_access_not_that_the_object_was_deleted(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    rita = make_user("rita")
    membership = add_member(proj, rita, "reviewer")
    image = make_image(proj, width=400, height=300, seed=23)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image)
    login_as(rita)
    open_review(page, proj, image)
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_be_visible()

    Membership.objects.filter(pk=membership.pk).delete()  # an admin removes rita
    page.keyboard.press("r")
    notice = page.get_by_test_id("project-error")
    expect(notice).to_contain_text("no longer have access to this project")
    expect(page.get_by_text("deleted by someone else")).to_have_count(0)
    assert Annotation.objects.get(pk=ann.pk).class_review == ReviewState.PENDING
    notice.get_by_role("link", name="All projects").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_annotator_gets_no_accept_all_and_no_retry_for_review_keys(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    anna = make_user("anna")
    add_member(proj, anna, "annotator")
    image, other = (make_image(proj, width=400, height=300, seed=s) for s in (24, 124))
    for im in (image, other):
        add_prediction(im, hammer, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image, other)
    login_as(anna)
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 403 else None)
    open_review(page, proj, image)

    expect(page.get_by_test_id("accept-all")).to_have_count(0)
    done = page.get_by_test_id("done-next")  # an annotator's "done here" (Enter did nothing for them)
    expect(done).to_be_enabled()
    expect(done).to_have_attribute("title", re.compile(r"can't accept or reject"))
    page.keyboard.press("a")
    note = toast(page, "can't accept or reject")
    expect(note).to_be_visible()
    expect(note).to_contain_text("annotator")
    expect(page.get_by_test_id("toast").get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.get_by_text("..")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(toast(page, "Next image. Nothing here is accepted: a reviewer does that")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/{other.pk}$"))
    assert Annotation.objects.filter(image=image, class_review="accepted").count() == 0
    assert refused == []


def test_a_refused_review_offers_no_retry(page, project, login_as):
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=25)
    ann = add_prediction(image, None, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_class(re.compile("selected"))
    page.keyboard.press("a")
    note = toast(page, "Choose a class before accepting it")
    expect(note).to_be_visible()
    expect(note.get_by_role("button", name="Retry")).to_have_count(0)


def test_dragging_a_class_colour_saves_the_last_colour_once(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer", color="#123456")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    picker = page.get_by_label("color of hammer")
    expect(picker).to_have_value("#123456")
    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" and "/classes/" in r.url else None)
    # What Chrome does while the user drags in the picker: an input event per step, one change at the end.
    picker.evaluate("""(el) => {
        const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
        for (const c of ['#ff0000', '#ee0000', '#dd0000', '#cc0000']) {
            set.call(el, c);
            el.dispatchEvent(new Event('input', { bubbles: true }));
        }
        el.dispatchEvent(new Event('change', { bubbles: true }));
    }""")
    wait_for(lambda: LabelClass.objects.get(pk=hammer.pk).color == "#cc0000", what="the last colour saved")
    page.wait_for_timeout(800)
    assert len(patches) == 1, patches
    expect(page.get_by_text("changed by someone else")).to_have_count(0)
    expect(picker).to_have_value("#cc0000")


def test_rename_puts_the_name_back_after_a_refused_or_empty_name(page, project, login_as):
    proj, owner = project
    make_class(proj, "hammer")
    make_class(proj, "pincers")
    wrench = make_class(proj, "wrench")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")

    name = page.get_by_label("name of hammer")
    name.fill("pincers")
    name.press("Enter")
    expect(toast(page, "already exists")).to_be_visible()
    expect(name).to_have_value("hammer")

    field = page.get_by_label("name of wrench")
    field.fill("")
    field.press("Enter")
    expect(toast(page, "A class needs a name")).to_be_visible()
    expect(field).to_have_value("wrench")
    assert LabelClass.objects.get(pk=wrench.pk).name == "wrench"


def test_admin_demoting_themselves_is_asked_first(page, project, login_as):
    proj, owner = project
    add_member(proj, make_user("adm2"), "admin")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/members")
    role = page.get_by_label("role of olga")
    expect(role).to_have_value("admin")

    asked: list[str] = []
    answer = {"ok": False}

    def on_dialog(d):
        asked.append(d.message)
        d.accept() if answer["ok"] else d.dismiss()

    page.on("dialog", on_dialog)
    role.select_option("viewer")
    wait_for(lambda: asked, what="a confirm before demoting yourself")
    assert "your own role" in asked[0]
    page.wait_for_timeout(500)
    assert Membership.objects.get(project=proj, user=owner).role == "admin"
    expect(role).to_have_value("admin")

    answer["ok"] = True
    role.select_option("viewer")
    wait_for(lambda: Membership.objects.get(project=proj, user=owner).role == "viewer", what="role PATCH")
    expect(page.locator("nav.tabs").get_by_role("link", name="Members")).to_have_count(0)
    assert len(asked) == 2


def test_pages_offer_only_what_the_role_may_do(page, project, login_as):
    """A reviewer saw an enabled "Run pre-annotation" and "Retry failed" that answered 403; a viewer's
    review page asked for the claim (a 403 and a console error) on every image; a signed-in /login
    said "Page not found"."""
    from backend.jobs.models import JobStatus, PrelabelJob
    from backend.jobs.services import start_job

    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=41)
    add_prediction(image, hammer, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image)
    job = start_job(project=proj, user=owner, images="all")
    PrelabelJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, failed=1, processed=1)
    rita, vera = make_user("rita"), make_user("vera")
    add_member(proj, rita, "reviewer")
    add_member(proj, vera, "viewer")
    refused: list[str] = []
    page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status == 403 else None)

    login_as(rita)
    page.goto(f"/p/{proj.pk}")
    expect(page.get_by_test_id(f"job-{job.pk}")).to_be_visible()
    expect(page.get_by_test_id("prelabel-form")).to_have_count(0)
    expect(page.get_by_test_id("prelabel-admins-only")).to_be_visible()
    expect(page.get_by_role("button", name="Retry failed")).to_have_count(0)

    page.context.clear_cookies()
    login_as(vera)
    open_review(page, proj, image)
    page.wait_for_timeout(500)
    assert not [r for r in refused if "/claim/" in r], refused
    page.goto("/login")
    expect(page.get_by_text("Page not found")).to_have_count(0)
    page.wait_for_url(re.compile(r"/$"))
