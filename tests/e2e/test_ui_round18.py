"""Browser, black-box round 18 (UI findings 5-8): a polygon drawn beside the image is refused in
plain words and stays drawn; the "No access" notice takes the project's messages along; the
shortcut help keeps focus inside; a deleted image shows one Enter badge; wordings of the upload
and gallery reports, the Upload page's link per role, the Classes form's labels in line, and
history entries that say a mask changed."""
from __future__ import annotations

import json

import pytest

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import in_thread, open_review, stage_drawn, toast, toasts, until
from .test_workspace_journeys import to_screen

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _wide_image_open(page, login_as, name: str, seed: int, user=None):
    """A 400x100 picture fitted by its width: the stage has a dark margin above and below it."""
    owner = make_user("olga")
    proj = make_project(owner, name=name)
    image = make_image(proj, width=400, height=100, seed=seed)
    obj = add_prediction(image, make_class(proj, "hammer"), rect_mask(100, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    if user is not None:
        add_member(proj, user, "reviewer")
    login_as(user or owner)
    open_review(page, proj, image)
    return proj, image, obj


def test_a_polygon_beside_the_image_is_refused_in_words_and_stays_drawn(page, login_as):
    """It was sent and came back as "polygons: lies wholly outside the image (400x300)"."""
    from playwright.sync_api import expect

    from backend.annotations.models import Annotation

    proj, image, _ = _wide_image_open(page, login_as, "Beside", 31)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/annotations/") else None)
    page.keyboard.press("l")
    for x, y in ((100, -40), (200, -40), (200, -10)):  # on the margin above the picture
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    expect(toast(page, "The polygon lies outside the image")).to_be_visible()
    expect(toast(page, "Couldn't save the polygon")).to_have_count(0)
    assert posts == []
    # Still drawn: two vertices dropped, two put on the picture, and the mended outline is sent.
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    for x, y in ((200, 60), (100, 60)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    until(page, lambda: Annotation.objects.filter(image=image).count() == 2, what="the mended polygon saved")
    made = Annotation.objects.filter(image=image).latest("pk")
    assert made.bbox[1] == 0  # its first vertex, above the picture, was clipped to the top edge


def test_the_no_access_notice_takes_the_project_pages_messages_along(page, login_as):
    """After a reviewer was removed, "Couldn't save the polygon: …" stayed on "No access to this project"."""
    from playwright.sync_api import expect

    from backend.projects import services as project_services
    from backend.projects.models import Membership

    rita = make_user("rita")
    proj, image, _ = _wide_image_open(page, login_as, "Removed", 32, user=rita)
    page.route("**/annotations/", lambda route: route.fulfill(status=400, content_type="application/json",
                                                              body=json.dumps({"detail": "Something is wrong."}))
               if route.request.method == "POST" else route.continue_())
    page.keyboard.press("l")
    for x, y in ((100, 20), (200, 20), (200, 80)):
        page.mouse.click(*to_screen(page, image, x, y))
    page.keyboard.press("Enter")
    expect(toast(page, "Couldn't save the polygon")).to_be_visible()
    page.wait_for_timeout(300)  # the socket is up
    membership = Membership.objects.get(project=proj, user=rita)
    in_thread(project_services.remove_member, project=proj, membership_id=membership.pk, version=membership.version)
    expect(page.get_by_test_id("project-error")).to_contain_text("No access to this project")
    expect(toasts(page)).to_have_count(0)


def test_the_shortcut_help_keeps_focus_inside_and_gives_it_back(page, login_as):
    """Tab in the help reached "Reject class (Shift+C)" behind the overlay."""
    from playwright.sync_api import expect

    _wide_image_open(page, login_as, "Help", 33)
    opener = page.get_by_title("Keyboard shortcuts (?)")
    opener.focus()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    inside = "() => !!document.activeElement?.closest('[role=dialog]')"
    for key in ("Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"):
        page.keyboard.press(key)
        assert page.evaluate(inside), f"focus left the help after {key}"
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()


def test_a_deleted_image_shows_one_enter_badge(page, login_as):
    from playwright.sync_api import expect

    from backend.images import services as image_services
    from backend.images.models import Image

    proj, image, _ = _wide_image_open(page, login_as, "Deleted", 34)
    page.wait_for_timeout(300)  # the socket is up
    boris = make_user("boris")
    in_thread(image_services.delete_image, project=proj, image_id=image.pk,
              version=Image.objects.get(pk=image.pk).api_version, user=boris, force=True)
    expect(page.get_by_test_id("gone-next")).to_be_visible()
    expect(page.get_by_test_id("accept-all")).to_be_disabled()
    expect(page.locator("kbd", has_text="Enter")).to_have_count(1)


def test_a_refused_exemplar_file_reads_with_single_punctuation(page, login_as):
    """"…skipped (annotation files go to the Import page).)." """
    from playwright.sync_api import expect

    owner = make_user("olga")
    proj = make_project(owner, name="Gallery")
    make_class(proj, "hammer")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("class-hammer").get_by_role("button", name="Add exemplars").click()
    chooser.value.set_files(files=[{"name": "labels.json", "mimeType": "application/json", "buffer": b'{"a": 1}'}])
    note = toast(page, "labels.json")
    expect(note).to_contain_text("go to the Import page)).")
    expect(note).not_to_contain_text(".).")


def test_the_add_class_labels_sit_in_one_line(page, login_as):
    from playwright.sync_api import expect

    owner = make_user("olga")
    proj = make_project(owner, name="Aligned")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    form = page.locator("form.form-row")
    expect(form).to_be_visible()
    tops = {name: round(form.locator("label", has_text=name).first.bounding_box()["y"]) for name in ("Name", "Kind", "Color")}
    assert len(set(tops.values())) == 1, tops


@pytest.mark.parametrize("role", ["admin", "annotator"])
def test_the_upload_page_says_image_ids_and_offers_pre_annotation_to_admins_only(page, login_as, celery_worker, role):
    """"the same file as img0.jpg in this upload: image #3" read as the third file; annotators were
    sent "Back to the dashboard to pre-annotate", which only admins start."""
    from playwright.sync_api import expect

    from backend.images.models import Image
    from tests.backend.factories import image_bytes

    owner, ann = make_user("olga"), make_user("ann1")
    proj = make_project(owner, name="Uploads")
    add_member(proj, ann, role)
    login_as(ann)
    page.goto(f"/p/{proj.pk}/upload")
    same = image_bytes(40, 30, (9, 99, 199))
    page.set_input_files("input[name=files]", files=[
        {"name": "shape.png", "mimeType": "image/png", "buffer": same},
        {"name": "shape copy.png", "mimeType": "image/png", "buffer": same},
    ])
    duplicate = page.get_by_test_id("upload-duplicate")
    expect(duplicate).to_have_count(1, timeout=30_000)
    stored = Image.objects.get(project=proj)
    expect(duplicate).to_contain_text(f"stored as image id {stored.pk}")
    expect(duplicate).not_to_contain_text("#")
    onward = page.locator("a.upload-next")
    if role == "admin":
        expect(onward).to_have_text("Back to the dashboard to pre-annotate →")
    else:
        expect(onward).to_be_visible()
        expect(onward).not_to_contain_text("pre-annotate")


def test_a_mask_edit_in_the_history_says_so_in_words(page, login_as):
    """Only two thumbnails and "→": hard to scan."""
    from playwright.sync_api import expect

    from backend.annotations import services as annotation_services

    owner = make_user("olga")
    proj = make_project(owner, name="History")
    image = make_image(proj, width=400, height=100, seed=35)
    obj = add_prediction(image, make_class(proj, "hammer"), rect_mask(100, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    in_thread(annotation_services.update_annotation, project=proj, annotation_id=obj.pk, user=owner,
              version=obj.version, polygons=[[0, 0, 40, 0, 40, 20, 0, 20]])
    login_as(owner)
    open_review(page, proj, image)
    stage_drawn(page, image.pk)
    page.keyboard.press("i")
    panel = page.get_by_test_id("history")
    expect(panel.locator("li.history-item")).to_have_count(1)
    expect(panel.get_by_test_id("mask-change")).to_have_text("mask changed: 400 px → 800 px")
