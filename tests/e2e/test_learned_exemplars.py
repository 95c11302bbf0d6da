"""The gallery that learns, in the browser: an admin sees an exemplar learned from a reviewer's
class fix with its provenance and the hard negative it left, filters the gallery by source,
and prunes them (one at a time and several at once), each prune a new gallery version."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from backend.annotations.services import update_annotation
from backend.gallery import learning
from backend.gallery.models import GalleryImage, HardNegative
from backend.gallery.services import upload_exemplars
from backend.images.services import upload_images
from backend.projects.models import Project
from tests.backend.factories import image_bytes, synthetic_png

from .seed import add_member, add_prediction, ellipse_mask, make_class, make_project, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-learn")


def shot(page, name: str) -> None:
    # Every thumbnail (the learned crop and the negative's too) really loads from the server.
    page.wait_for_function("[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_admin_sees_a_learned_exemplar_with_provenance_and_prunes_it(page, login_as):
    owner, rita = make_user("olga"), make_user("rita")
    proj = make_project(owner, name="Hand tools")
    add_member(proj, rita, "reviewer")
    wrench, spanner = make_class(proj, "wrench", color="#4363d8"), make_class(proj, "spanner", color="#f58231")
    for cls, colour in ((wrench, (60, 90, 200)), (spanner, (230, 130, 50))):
        upload_exemplars(project=proj, user=owner, class_id=cls.pk,
                         files=[SimpleUploadedFile(f"{cls.name}.png", image_bytes(40, 40, colour))])
    image = upload_images(project=proj, user=owner, files=[SimpleUploadedFile("bench.png", synthetic_png(7))]).created[0]
    obj = add_prediction(image, wrench, ellipse_mask(image.height, image.width, 80, 60, 40, 22))

    # Rita fixes the class; the project learns from it (the learning task's own function, run here:
    # the loop through the worker is tests/backend/test_gallery_learning.py).
    update_annotation(project=proj, annotation_id=obj.pk, user=rita, version=obj.version, class_id=spanner.pk)
    Project.objects.filter(pk=proj.pk).update(learn_from_reviews=True)
    obj.refresh_from_db()
    got = learning.learn_from_change(annotation_id=obj.pk, version=obj.version)
    learned_id, negative_id = got["exemplar"], got["negative"]
    version = Project.objects.get(pk=proj.pk).gallery_version

    login_as(owner)
    page.on("dialog", lambda d: d.accept())
    page.goto(f"/p/{proj.pk}/classes")
    spanner_card = page.get_by_test_id("class-spanner")
    learned = spanner_card.get_by_test_id(f"exemplar-{learned_id}")
    expect(learned).to_have_attribute("data-source", "learned")
    expect(learned).to_contain_text("learned")
    expect(spanner_card.get_by_test_id("learned-provenance")).to_contain_text(f"learned from image #{image.pk} by rita")
    negative = page.get_by_test_id("class-wrench").get_by_test_id(f"negative-{negative_id}")
    expect(negative).to_be_visible()
    assert negative.get_attribute("title").startswith(f"not wrench: moved away by rita on image #{image.pk}, ")
    expect(page.locator("[data-testid^=exemplar-][data-source]")).to_have_count(3)
    shot(page, "classes-learned")

    page.get_by_label("exemplar source").select_option("learned")
    expect(page.locator("[data-testid^=exemplar-][data-source]")).to_have_count(1)
    shot(page, "classes-learned-only")
    page.get_by_label("exemplar source").select_option("uploaded")
    expect(page.locator("[data-testid^=exemplar-][data-source]")).to_have_count(2)
    expect(page.locator("[data-source=learned]")).to_have_count(0)
    page.get_by_label("exemplar source").select_option("all")

    # Prune the learned exemplar and the hard negative, each with a confirm.
    learned.get_by_role("button", name=f"remove exemplar {learned_id}").click()
    expect(page.get_by_test_id(f"exemplar-{learned_id}")).to_have_count(0)
    negative.get_by_role("button", name=f"remove hard negative {negative_id}").click()
    expect(page.get_by_test_id(f"negative-{negative_id}")).to_have_count(0)
    assert GalleryImage.objects.get(pk=learned_id).removed_at is not None
    assert HardNegative.objects.get(pk=negative_id).removed_at is not None
    assert Project.objects.get(pk=proj.pk).gallery_version == version + 2

    # Bulk: select both uploaded exemplars, remove them in one go (one version).
    uploaded = list(GalleryImage.objects.filter(project=proj, source="uploaded").values_list("pk", flat=True))
    for pk in uploaded:
        page.get_by_label(f"select exemplar {pk}").check()
    shot(page, "classes-bulk-selected")
    page.get_by_role("button", name="Remove 2 selected exemplars").click()
    expect(page.locator("[data-testid^=exemplar-][data-source]")).to_have_count(0)
    assert not GalleryImage.objects.filter(project=proj, removed_at__isnull=True).exists()
    assert Project.objects.get(pk=proj.pk).gallery_version == version + 3


def test_a_reviewer_sees_provenance_but_no_prune_controls(page, login_as):
    owner, rita = make_user("olga"), make_user("rita")
    proj = make_project(owner, name="Hand tools")
    add_member(proj, rita, "reviewer")
    wrench, spanner = make_class(proj, "wrench"), make_class(proj, "spanner")
    image = upload_images(project=proj, user=owner, files=[SimpleUploadedFile("bench.png", synthetic_png(8))]).created[0]
    obj = add_prediction(image, wrench, ellipse_mask(image.height, image.width, 80, 60, 40, 22))
    update_annotation(project=proj, annotation_id=obj.pk, user=rita, version=obj.version, class_id=spanner.pk)
    Project.objects.filter(pk=proj.pk).update(learn_from_reviews=True)
    obj.refresh_from_db()
    got = learning.learn_from_change(annotation_id=obj.pk, version=obj.version)

    login_as(rita)
    page.goto(f"/p/{proj.pk}/classes")
    expect(page.get_by_test_id(f"exemplar-{got['exemplar']}")).to_have_attribute("data-source", "learned")
    expect(page.get_by_test_id(f"negative-{got['negative']}")).to_be_visible()
    expect(page.get_by_role("button", name=f"remove exemplar {got['exemplar']}")).to_have_count(0)
    expect(page.get_by_role("button", name=f"remove hard negative {got['negative']}")).to_have_count(0)
    expect(page.get_by_label(f"select exemplar {got['exemplar']}")).to_have_count(0)
