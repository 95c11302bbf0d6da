"""Black-box rounds 13-14 in the browser: candidates under their class's name now (a rename kept
the old name on every candidate), a digit on an object without suggestions says so, a double click
on an exemplar's × removes it once, z takes back a restore, and more."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from backend.gallery.models import GalleryImage
from backend.gallery.services import upload_exemplars
from backend.projects.services import update_class
from tests.backend.factories import image_bytes

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, toast

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-round13")


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


def test_candidates_show_their_class_under_its_current_name(page, project, login_as):
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image = make_image(proj, width=400, height=300, seed=5)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 10, 10, 60, 60), candidates=[
        {"class_id": hammer.pk, "name": "hammer", "score": 0.9, "exemplar_id": None},
        {"class_id": wrench.pk, "name": "wrench", "score": 0.4, "exemplar_id": None},
    ])
    mark_prelabeled(image)
    update_class(project=proj, class_id=hammer.pk, version=hammer.version, name="mallet")
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    expect(page.get_by_test_id("candidate-mallet")).to_contain_text("mallet")
    expect(page.locator(".candidates")).not_to_contain_text("hammer")


def test_a_digit_on_an_object_without_suggestions_says_how_to_pick_a_class(page, project, login_as):
    proj, owner = project
    make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=6)
    ann = add_prediction(image, None, rect_mask(300, 400, 10, 10, 60, 60), candidates=[])
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("3")
    expect(toast(page, "no class suggestions; press / to search")).to_be_visible()


def test_a_double_click_on_an_exemplars_remove_asks_once_and_says_no_error(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    exemplar = upload_exemplars(project=proj, user=owner, class_id=hammer.pk,
                                files=[SimpleUploadedFile("h.png", image_bytes(40, 40, (200, 60, 60)))])
    exemplar_id = GalleryImage.objects.get(project=proj).pk
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    page.get_by_role("button", name=f"remove exemplar {exemplar_id}").dblclick()
    expect(page.get_by_test_id(f"exemplar-{exemplar_id}")).to_have_count(0)
    page.wait_for_timeout(500)
    assert len(dialogs) == 1, dialogs
    expect(page.locator("[data-testid=toast].note-error")).to_have_count(0)
    assert GalleryImage.objects.get(pk=exemplar_id).removed_at is not None
    assert exemplar is not None


def test_the_per_class_table_names_a_renamed_class_by_its_name_now(page, project, login_as):
    """An evaluation keeps the class names it ran under; after a rename the Models page's table
    showed a class the project no longer has."""
    from backend.learning.models import EvaluationRun

    proj, owner = project
    cat = make_class(proj, "ka")
    EvaluationRun.objects.create(project=proj, engine="gdino-sam2", total=1, created_by=owner, state="done", metrics={
        "per_class": [{"class_id": cat.pk, "name": "ka", "gt": 3, "tp": 2, "fp": 1, "precision": 0.67, "recall": 0.67}]})
    update_class(project=proj, class_id=cat.pk, version=cat.version, name="ka renamed")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/models")
    table = page.get_by_test_id("per-class")
    expect(table).to_contain_text("ka renamed")


def test_z_right_after_restore_this_version_takes_the_restore_back(page, project, login_as):
    """Black-box round 14: z after "Restore this version" undid an older edit instead, leaving the
    object in a state it never had."""
    from backend.annotations.models import Annotation
    from backend.annotations.services import update_annotation

    from .seed import rle_of

    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    image = make_image(proj, width=400, height=300, seed=31)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 80, 80))
    mark_prelabeled(image)
    big = rle_of(rect_mask(300, 400, 20, 20, 200, 200))
    ann = update_annotation(project=proj, annotation_id=ann.pk, user=owner, version=ann.version, class_id=wrench.pk)
    ann = update_annotation(project=proj, annotation_id=ann.pk, user=owner, version=ann.version, mask_rle=big)
    ann = update_annotation(project=proj, annotation_id=ann.pk, user=owner, version=ann.version, class_id=hammer.pk)
    before = (ann.label_class_id, ann.mask_rle["counts"])
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("i")
    panel = page.get_by_test_id("history")
    expect(panel.locator("li.history-item")).to_have_count(3)
    panel.locator("li.history-item").nth(2).get_by_role("button", name="Restore this version").click()  # wrench, small
    def state():
        a = Annotation.objects.get(pk=ann.pk)
        return a.label_class_id, a.mask_rle["counts"]
    from .steps import until

    until(page, lambda: state()[0] == wrench.pk, what="the restore")
    assert state()[1] != before[1]
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("z")
    until(page, lambda: state() == before, what="z took the restore back")
    expect(toast(page, "Undid the restore")).to_be_visible()


def test_the_delete_key_on_an_accepted_object_tells_an_annotator_why_not(page, project, login_as):
    """The Delete button is disabled for an annotator on an accepted object, but the Delete key sent
    it and the server's 403 showed as "Couldn't save the deletion"."""
    from backend.annotations.models import Annotation

    from .seed import add_member

    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=32)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 20, 20, 80, 80))
    Annotation.objects.filter(pk=ann.pk).update(class_review="accepted", mask_review="accepted")
    mark_prelabeled(image)
    anna = make_user("anna")
    add_member(proj, anna, "annotator")
    login_as(anna)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    page.keyboard.press("Delete")
    expect(toast(page, "only a reviewer or admin can delete it")).to_be_visible()
    expect(toast(page, "Couldn't save")).to_have_count(0)
    assert Annotation.objects.filter(pk=ann.pk).exists()


def test_the_review_link_keeps_the_filters_it_carries(page, project, login_as):
    """/p/{id}/review?status=done&label_class=3 opened a pre-labeled image without that class."""
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer"), make_class(proj, "wrench")
    plain = make_image(proj, width=400, height=300, seed=33)
    add_prediction(plain, hammer, rect_mask(300, 400, 20, 20, 80, 80))
    wanted = make_image(proj, width=400, height=300, seed=34)
    add_prediction(wanted, wrench, rect_mask(300, 400, 20, 20, 80, 80))
    mark_prelabeled(plain, wanted)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review?label_class={wrench.pk}")
    page.wait_for_url(f"**/p/{proj.pk}/review/{wanted.pk}")


def test_an_admin_deletes_the_ticked_images_with_one_confirm(page, project, login_as):
    """Black-box round 14: clearing 200 images took 200 clicks and 200 confirms."""
    from backend.images.models import Image

    proj, owner = project
    images = [make_image(proj, width=40, height=30, seed=40 + i) for i in range(5)]
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    page.get_by_test_id(f"pick-image-{images[0].pk}").check()
    page.get_by_test_id(f"pick-image-{images[1].pk}").check()
    expect(page.get_by_test_id("delete-selected")).to_have_text("Delete selected (2)")
    page.get_by_label("select every image on this page").check()
    expect(page.get_by_test_id("delete-selected")).to_have_text("Delete selected (5)")
    page.get_by_test_id(f"pick-image-{images[4].pk}").uncheck()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "images-ticked.png"))
    page.get_by_test_id("delete-selected").click()
    expect(toast(page, "Deleted 4 images")).to_be_visible()
    names = ", ".join(f'"{im.original_name}"' for im in images[:4])
    assert asked == [f"Delete 4 images with their objects ({names})? This can't be undone."], asked
    assert list(Image.objects.filter(project=proj).values_list("pk", flat=True)) == [images[4].pk]
    expect(page.get_by_test_id("images-table").locator("tbody tr")).to_have_count(1)


def test_a_filter_or_page_change_drops_the_ticks_it_hides(page, project, login_as):
    """Black-box round 15: two rows ticked, then the status filter changed: the bar still said
    "Delete selected (2)" over rows none ticked, and the delete took the two hidden images too."""
    from backend.images.models import Image

    proj, owner = project
    hidden = [make_image(proj, width=40, height=30, seed=60 + i) for i in range(2)]
    done = make_image(proj, width=40, height=30, seed=62)
    Image.objects.filter(pk=done.pk).update(status="done")
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    for im in hidden:
        page.get_by_test_id(f"pick-image-{im.pk}").check()
    expect(page.get_by_test_id("delete-selected")).to_have_text("Delete selected (2)")
    page.get_by_label("status filter").select_option("done")  # in the app: a page load would clear it anyway
    page.get_by_test_id(f"pick-image-{done.pk}").check()
    expect(page.get_by_test_id("delete-selected")).to_have_text("Delete selected (1)")
    page.get_by_test_id("delete-selected").click()
    expect(toast(page, "Deleted 1 image")).to_be_visible()
    assert asked == [f'Delete 1 image with their objects ("{done.original_name}")? This can\'t be undone.'], asked
    assert sorted(Image.objects.filter(project=proj).values_list("pk", flat=True)) == sorted(im.pk for im in hidden)
