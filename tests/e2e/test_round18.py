"""Browser, round 18: a role changed by another admin is followed live on every page of the
project; a write refused by a password reset is kept until the new password is set."""
from __future__ import annotations

import pytest

from .seed import add_member, make_project, make_staff, make_user
from .steps import in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_promoted_member_gets_the_admin_pages_without_a_reload(page, login_as):
    from playwright.sync_api import expect

    from backend.projects import services as project_services
    from backend.projects.models import Role

    owner, bob = make_user("olga"), make_user("bob")
    proj = make_project(owner, name="Promoted")
    membership = add_member(proj, bob, Role.REVIEWER)
    login_as(bob)
    page.goto(f"/p/{proj.pk}/images")
    bar = page.get_by_test_id("project-bar")
    expect(bar).to_be_visible()
    expect(bar.get_by_text("Settings")).to_have_count(0)
    page.wait_for_timeout(300)  # let the websocket join
    in_thread(project_services.change_role, project=proj, membership_id=membership.pk, role=Role.ADMIN,
              version=membership.version)
    expect(bar.get_by_text("Settings")).to_be_visible()
    membership.refresh_from_db()
    in_thread(project_services.change_role, project=proj, membership_id=membership.pk, role=Role.ANNOTATOR,
              version=membership.version)
    expect(bar.get_by_text("Settings")).to_have_count(0)


def test_a_decision_refused_by_a_password_reset_is_sent_once_the_new_password_is_set(page, login_as):
    """An admin reset the reviewer's password while a decision was failing: signing in again with the
    one-time password sent the decision at once, it was refused ("Set your own password first
    (PATCH /api/auth/me/ …)", no Retry) and after the password was set it was never sent: lost."""
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation, ReviewState
    from backend.core.accounts import reset_password

    from .seed import add_prediction, make_class, make_image, mark_prelabeled, rect_mask
    from .steps import open_review, toast, toasts, until

    owner = make_user("olga")
    root = make_staff()
    proj = make_project(owner, name="Reset")
    image = make_image(proj, width=400, height=300, seed=181)
    ann = add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 40, 40))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    one_time = reset_password(by=root, user=owner)  # ends the browser's session (it holds the old password's hash)
    page.keyboard.press("r")
    form = page.get_by_test_id("sign-in-again")
    expect(form).to_be_visible()
    expect(toast(page, "Your session ended")).to_be_visible()
    expect(form.locator("input[name=username]")).to_have_value("olga")  # the page's own user
    form.locator("input[name=password]").fill(one_time)
    form.get_by_role("button", name="Sign in").click()
    again = page.get_by_test_id("set-password-again")
    expect(again).to_be_visible()
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_count(1)  # the page stays under the form
    page.wait_for_timeout(500)
    expect(toasts(page).filter(has_text="Set your own password first")).to_have_count(0)
    assert Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.PENDING
    again.locator("input[name=current_password]").fill(one_time)
    again.locator("input[name=new_password]").fill("a-brand-new-secret-18")
    again.locator("input[name=new_password_again]").fill("a-brand-new-secret-18")
    again.get_by_role("button", name="Set password").click()
    until(page, lambda: Annotation.objects.get(pk=ann.pk).mask_review == ReviewState.REJECTED, what="the reject saved")
    expect(again).to_have_count(0)
    expect(toasts(page).filter(has_text="Your session ended")).to_have_count(0)
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_attribute("data-mask-review", "rejected")


def test_a_pass_over_done_images_offers_each_once(page, login_as):
    """The queue filtered to Done went 2 → 3 → 2 → 3 on Enter over seven done images: a reviewed image
    stays done, and only the one just left was passed over."""
    import re

    from playwright.sync_api import expect

    from backend.images.models import Image, ImageStatus

    from .seed import make_image
    from .steps import stage_drawn

    owner = make_user("olga")
    proj = make_project(owner, name="QA pass")
    images = [make_image(proj, width=120, height=90, seed=40 + i) for i in range(4)]
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.DONE)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review?filters")
    page.get_by_label("queue status").select_option("done")
    page.get_by_test_id("queue-start").click()
    seen = []
    for _ in range(len(images)):
        page.wait_for_url(re.compile(rf"/p/{proj.pk}/review/\d+$"))
        current = int(page.url.rsplit("/", 1)[1])
        assert current not in seen, (seen, current)
        seen.append(current)
        stage_drawn(page, current)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url, current=current: not url.endswith(f"/review/{current}"))
    assert sorted(seen) == sorted(i.pk for i in images)
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.get_by_test_id("queue-pass-done")).to_contain_text("4 images")
    page.get_by_test_id("queue-pass-again").click()
    page.wait_for_url(re.compile(rf"/p/{proj.pk}/review/\d+$"))


def test_a_forced_change_by_an_admin_is_told_to_the_reviewer_holding_the_image(page, login_as):
    """An admin's forced class change (cat → dog) on an image a reviewer held showed up with no word;
    the reviewer then accepted 'dog' without noticing."""
    import json

    from django.test import Client
    from playwright.sync_api import expect

    from .seed import add_prediction, make_class, make_image, mark_prelabeled, rect_mask
    from .steps import open_review, stage_drawn, toast

    owner, rev = make_user("olga"), make_user("rev")
    proj = make_project(owner, name="Forced")
    add_member(proj, rev, "reviewer")
    cat, dog = make_class(proj, "cat"), make_class(proj, "dog")
    image = make_image(proj, width=400, height=300, seed=182)
    ann = add_prediction(image, cat, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image)
    login_as(rev)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    expect(page.get_by_test_id("workspace")).to_have_attribute("data-read-only", "false")
    page.wait_for_timeout(300)  # let the websocket join

    def force():
        admin = Client()
        admin.force_login(owner)
        return admin.patch(f"/api/projects/{proj.pk}/annotations/{ann.pk}/?force=1",
                           json.dumps({"label_class": dog.pk, "version": ann.version}), content_type="application/json")

    answer = in_thread(force)
    assert answer.status_code == 200, answer.content
    expect(toast(page, "olga changed an object's class: cat → dog")).to_be_visible()


def test_an_object_drawn_on_a_done_image_and_undone_leaves_it_done(page, login_as):
    """Drawn on a done image with no objects and taken back with z, the image stayed 'in review' with
    0 objects: back in the queue, one less in the dashboard's Done count, though nothing changed."""
    from backend.annotations.models import Annotation
    from backend.images.models import Image, ImageStatus

    from .seed import make_image
    from .steps import open_review, stage_drawn, until
    from .test_workspace_journeys import to_screen

    owner = make_user("olga")
    proj = make_project(owner, name="Undo on done")
    image = make_image(proj, width=400, height=300, seed=183)
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.DONE)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    page.keyboard.press("l")
    for x, y in ((100, 60), (300, 60), (300, 240)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    until(page, lambda: Annotation.objects.filter(image=image).count() == 1, what="the polygon saved")
    until(page, lambda: Image.objects.get(pk=image.pk).status == ImageStatus.IN_REVIEW, what="in review")
    page.keyboard.press("z")
    until(page, lambda: not Annotation.objects.filter(image=image).exists(), what="the object undone")
    until(page, lambda: Image.objects.get(pk=image.pk).status == ImageStatus.DONE, what="done again")


def test_a_change_waiting_to_be_sent_again_holds_the_page(page, login_as):
    """A class change kept for after the sign-in (and the password to set) was dropped without a word
    by a reload: only a half-drawn polygon or a click-mask asked before leaving (black-box round 18b)."""
    from playwright.sync_api import expect

    from .seed import add_prediction, make_class, make_image, mark_prelabeled, rect_mask
    from .steps import open_review, stage_drawn, toast
    from .test_review_guards import beforeunload_blocks

    owner = make_user("olga")
    proj = make_project(owner, name="Held")
    image = make_image(proj, width=400, height=300, seed=184)
    ann = add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 40, 40))
    make_class(proj, "wrench")
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    assert not beforeunload_blocks(page)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.context.set_offline(True)
    page.keyboard.press("/")
    page.keyboard.type("wrench")
    page.keyboard.press("Enter")
    expect(toast(page, "Couldn't save the class")).to_have_count(1)
    assert beforeunload_blocks(page)
    page.context.set_offline(False)


def test_a_password_set_in_another_tab_lets_this_one_go_on(page, login_as):
    """Two tabs on 'Set your password': after the first set it, the second said 'The current password
    is wrong.' for the one-time password, and only a reload got out (black-box round 18b)."""
    from playwright.sync_api import expect

    from backend.core.accounts import reset_password

    owner = make_user("olga")
    make_project(owner, name="Two tabs")
    one_time = reset_password(by=make_staff(), user=owner)
    page.goto("/")
    page.locator("input[name=username]").fill("olga")
    page.locator("input[name=password]").fill(one_time)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("set-password")).to_be_visible()
    other = page.context.new_page()
    other.goto("/")
    expect(other.get_by_test_id("set-password")).to_be_visible()
    for tab in (page, other):
        form = tab.get_by_test_id("set-password")
        form.locator("input[name=current_password]").fill(one_time)
        form.locator("input[name=new_password]").fill("a-brand-new-secret-18b")
        form.locator("input[name=new_password_again]").fill("a-brand-new-secret-18b")
        form.get_by_role("button", name="Set password").click()
        expect(tab.get_by_test_id("set-password")).to_have_count(0)
    expect(other.get_by_role("alert")).to_have_count(0)


def test_the_help_closes_from_its_top_on_a_phone(page, login_as):
    """At 375 px the help's only button, 'Close (Esc)', was ~1,240 px down the card (black-box round 18b)."""
    from playwright.sync_api import expect

    from .seed import make_image
    from .steps import open_review, stage_drawn

    owner = make_user("olga")
    proj = make_project(owner, name="Phone help")
    image = make_image(proj, width=400, height=300, seed=185)
    page.set_viewport_size({"width": 375, "height": 740})
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    close = dialog.get_by_role("button", name="Close (Esc)")
    expect(close).to_be_in_viewport()
    close.click()
    expect(dialog).to_have_count(0)


def test_a_member_added_back_goes_on_from_the_no_access_notice(page, login_as):
    """Removed and added back, a member stayed on "No access to this project" until a reload."""
    from playwright.sync_api import expect

    from backend.projects import services as project_services
    from backend.projects.models import Role

    owner, bob = make_user("olga"), make_user("bob")
    proj = make_project(owner, name="Back again")
    membership = add_member(proj, bob, Role.ANNOTATOR)
    login_as(bob)
    page.goto(f"/p/{proj.pk}/images")
    expect(page.get_by_test_id("project-bar")).to_be_visible()
    page.wait_for_timeout(300)  # let the websocket join
    in_thread(project_services.remove_member, project=proj, membership_id=membership.pk, version=membership.version)
    expect(page.get_by_test_id("project-error")).to_contain_text("No access to this project")
    add_member(proj, bob, Role.ANNOTATOR)
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")  # the user comes back to the tab
    expect(page.get_by_test_id("project-bar")).to_be_visible()
    expect(page.get_by_test_id("project-error")).to_have_count(0)


def test_a_session_ended_under_the_set_password_form_leaves_nothing_behind(page, login_as):
    """Signed in again on a one-time password over a page (the set-password form over it), then signed
    out in another tab: the next user to sign in there on a one-time password got the old page under
    a set-password overlay instead of the plain set-password page."""
    from playwright.sync_api import expect

    from backend.core.accounts import reset_password

    owner, bob = make_user("olga"), make_user("bob")
    root = make_staff()
    proj = make_project(owner, name="Sign out")
    add_member(proj, bob, "annotator")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    bar = page.get_by_test_id("project-bar")
    expect(bar).to_be_visible()
    one_time = reset_password(by=root, user=owner)  # ends the session
    bar.get_by_text("Classes").click()
    overlay = page.get_by_test_id("sign-in-again")
    expect(overlay).to_be_visible()
    overlay.locator("input[name=password]").fill(one_time)
    overlay.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("set-password-again")).to_be_visible()
    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    expect(overlay).to_be_visible()  # this tab is told
    bobs = reset_password(by=root, user=bob)
    overlay.locator("input[name=username]").fill("bob")
    overlay.locator("input[name=password]").fill(bobs)
    overlay.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("set-password")).to_be_visible()
    expect(page.get_by_test_id("set-password-again")).to_have_count(0)
