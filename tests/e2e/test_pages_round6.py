"""Project pages, round 6 of the black-box report (ui6): the Images list opens an image from the
keyboard, an error page from the server or a proxy is said in words (not its markup), and an
image that failed to open can be tried again."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .seed import add_prediction, make_class, make_image, make_project, make_staff, make_user, mark_prelabeled, rect_mask
from .steps import stage_drawn, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("pavel")
    return make_project(owner, name="Workbench"), owner


def test_the_images_list_opens_an_image_from_the_keyboard(page, project, login_as):
    """Rows opened only on a mouse click (a <tr onClick>): Tab reached the Delete buttons alone."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=71)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    link = page.get_by_role("link", name=image.original_name)
    expect(link).to_have_attribute("href", f"/p/{proj.pk}/review/{image.pk}")
    for _ in range(40):  # Tab until the image's link has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.getAttribute('href')") == f"/p/{proj.pk}/review/{image.pk}":
            break
    else:
        raise AssertionError("Tab never reached the image's link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/{image.pk}$"))
    stage_drawn(page, image.pk)


def test_an_html_error_page_is_said_in_words_and_the_image_can_be_tried_again(page, project, login_as):
    """A 500 on the image showed "Couldn't open the image: <h1>Server Error (500)</h1>" and only
    offered the next image."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=72)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    detail = re.compile(rf".*/api/projects/{proj.pk}/images/{image.pk}/$")
    page.route(detail, lambda route: route.fulfill(status=500, content_type="text/html",
                                                  body="<h1>Server Error (500)</h1>"))
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Couldn't open the image: The server had an unexpected problem (500). "
                               "Try again; if it keeps happening, tell your admin.")
    page.unroute(detail)
    page.get_by_test_id("retry-load").click()
    stage_drawn(page, image.pk)


def _sign_in_form(pg, username, password):
    pg.goto("/")
    pg.fill("input[name=username]", username)
    pg.fill("input[name=password]", password)
    pg.click("button[type=submit]")


def test_one_time_passwords_stay_and_an_instance_admin_resets_a_forgotten_one(browser, live_url, page, login_as):
    """A second new user replaced the first one's password box (that password was lost), and no
    page could give a member who forgot theirs a new one."""
    from django.contrib.auth import get_user_model

    root = make_staff("root6")
    proj = make_project(root, name="Staffed")
    login_as(root)
    page.goto(f"/p/{proj.pk}/members")
    for name in ("nina", "nick"):
        page.fill("input[name=new-username]", name)
        page.get_by_role("button", name="Create user").click()
        expect(page.get_by_test_id(f"member-{name}")).to_be_visible()
    boxes = page.get_by_test_id("one-time-password")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(0)).to_contain_text("nina")
    expect(boxes.nth(1)).to_contain_text("nick")
    boxes.nth(0).get_by_role("button", name="Done").click()
    expect(boxes).to_have_count(1)

    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("reset-password-nick").click()
    fresh = page.get_by_test_id("one-time-password").filter(has_text="New password for nick")
    expect(fresh).to_be_visible()
    expect(page.get_by_test_id("one-time-password")).to_have_count(1)  # nick's first one is replaced, not kept
    password = fresh.locator("code").inner_text().strip()
    assert get_user_model().objects.get(username="nick").check_password(password)
    expect(page.get_by_test_id("reset-password-root6")).to_have_count(0)  # one's own: the Account page
    # Leaving drops them: asked first (Back or another tab dropped them without a word)
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("link", name="Images").click()
    until(page, lambda: asked, what="the question")
    assert "nick" in asked[0] and "will not be shown again" in asked[0]
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/members$"))
    expect(fresh).to_be_visible()

    other = browser.new_context(base_url=live_url, viewport={"width": 1400, "height": 900})
    p2 = other.new_page()
    try:
        _sign_in_form(p2, "nick", password)
        expect(p2.get_by_test_id("set-password")).to_be_visible()
    finally:
        other.close()


def test_a_signed_in_user_changes_their_password_on_the_account_page(browser, live_url, page, project):
    """There was no page for it: the first admin's printed password could never be changed."""
    from django.contrib.auth import get_user_model

    proj, owner = project
    owner.set_password("pavels-first-secret")
    owner.save()
    _sign_in_form(page, "pavel", "pavels-first-secret")
    page.get_by_test_id("whoami").get_by_role("link", name="pavel").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    form = page.get_by_test_id("change-password")
    form.locator("input[name=current_password]").fill("wrong-guess-1")
    form.locator("input[name=new_password]").fill("pavels-second-secret")
    form.locator("input[name=new_password_again]").fill("pavels-second-secret")
    form.get_by_role("button", name="Change password").click()
    expect(form.get_by_role("alert")).to_have_text("The current password is wrong.")
    form.locator("input[name=current_password]").fill("pavels-first-secret")
    form.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    assert get_user_model().objects.get(pk=owner.pk).check_password("pavels-second-secret")
    page.get_by_role("link", name="Razmetka").click()
    expect(page.get_by_role("link", name="Workbench")).to_be_visible()  # still signed in


def test_unsaved_settings_ask_before_the_page_is_left(page, project, login_as):
    """A changed threshold and description were dropped without a word when another tab was opened."""
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/settings")
    page.fill("input[name=box_threshold]", "0.5")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("link", name="Images").click()
    until(page, lambda: asked, what="the question")
    assert "not saved" in asked[0]
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/settings$"))
    expect(page.locator("input[name=box_threshold]")).to_have_value("0.5")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("link", name="Images").click()
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/images$"))
    assert len(asked) == 1


def test_back_returns_to_the_images_list_as_it_was_filtered(page, project, login_as):
    """A filter change replaced the history entry: Back skipped the earlier list (and left the app
    after a deep link)."""
    proj, owner = project
    make_image(proj, width=400, height=300, seed=73)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    page.get_by_label("status filter").select_option("done")
    expect(page).to_have_url(re.compile(r"/images\?status=done$"))
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/images$"))
    expect(page.get_by_label("status filter")).to_have_value("")


def test_the_import_page_gives_the_hint_apart_and_says_when_nothing_was_new(page, project, login_as, celery_worker):
    """The hint showed as a red error named "hint"; re-importing said "0 objects added to 7 images"."""
    import json

    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=74)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    login_as(owner)
    coco = {"images": [{"id": 1, "file_name": "missing.png", "width": 400, "height": 300}],
            "categories": [{"id": 1, "name": "hammer"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20]}]}
    page.goto(f"/p/{proj.pk}/import")
    page.select_option("select[name=import-format]", "coco")
    page.set_input_files("input[name=import-file]", files=[{"name": "c.json", "mimeType": "application/json",
                                                            "buffer": json.dumps(coco).encode()}])
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-hint")).to_contain_text("upload the images first", timeout=30_000)
    expect(page.get_by_test_id("import-errors")).not_to_contain_text("hint")
    coco["images"][0]["file_name"] = image.original_name
    page.goto(f"/p/{proj.pk}/import")
    page.select_option("select[name=import-format]", "coco")
    page.set_input_files("input[name=import-file]", files=[{"name": "c.json", "mimeType": "application/json",
                                                            "buffer": json.dumps(coco).encode()}])
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-outcome")).to_contain_text("Nothing added: every object in the file was already there.",
                                                                  timeout=30_000)
