"""Instance classes in the browser: an admin adds "отвертка-1234" under the type "отвертка" on the
Classes page; review shows "type › instance" and offers instances grouped under their type."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation
from backend.projects.models import LabelClass

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import stage_drawn

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-instances")


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_admin_creates_an_instance_under_a_type(page, login_as):
    owner = make_user("olga")
    proj = make_project(owner, name="Hand tools")
    screwdriver = make_class(proj, "отвертка", color="#4363d8")
    make_class(proj, "pliers", color="#3cb44b")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    expect(page.get_by_test_id("class-отвертка")).to_be_visible()

    page.fill("input[name=class-name]", "отвертка-1234")
    page.get_by_label("kind of the new class").select_option(label="Instance of отвертка")
    page.get_by_role("button", name="Add instance").click()

    nested = page.get_by_test_id("instances-of-отвертка").get_by_test_id("class-отвертка-1234")
    expect(nested).to_be_visible()
    expect(nested).to_have_attribute("data-kind", "instance")
    expect(page.get_by_test_id("class-отвертка")).to_contain_text("1 instance")
    instance = LabelClass.objects.get(project=proj, name="отвертка-1234")
    assert (instance.kind, instance.parent_id) == ("instance", screwdriver.pk)
    assert instance.color not in {"#4363d8", "#3cb44b"}  # an unused colour, picked by the server
    shot(page, "classes-nested")

    # Moving it to be a type again un-nests it.
    page.get_by_label("kind of отвертка-1234").select_option(label="type")
    expect(page.get_by_test_id("instances-of-отвертка")).to_have_count(0)
    expect(page.get_by_test_id("class-group-отвертка-1234")).to_be_visible()
    instance.refresh_from_db()
    assert (instance.kind, instance.parent_id) == ("class", None)


def test_review_shows_type_and_instance_and_groups_the_picker(page, login_as):
    owner = make_user("olga")
    proj = make_project(owner, name="Hand tools")
    screwdriver = make_class(proj, "отвертка", color="#4363d8")
    s1234 = make_class(proj, "отвертка-1234", kind="instance", parent=screwdriver, color="#f58231")
    s2345 = make_class(proj, "отвертка-2345", kind="instance", parent=screwdriver, color="#911eb4")
    make_class(proj, "pliers", color="#3cb44b")
    image = make_image(proj, width=320, height=240)
    candidates = [
        {"class_id": screwdriver.pk, "name": "отвертка", "score": 0.93, "exemplar_id": None, "kind": "class", "parent_id": None},
        {"class_id": s1234.pk, "name": "отвертка-1234", "score": 0.93, "exemplar_id": None, "kind": "instance", "parent_id": screwdriver.pk},
        {"class_id": s2345.pk, "name": "отвертка-2345", "score": 0.71, "exemplar_id": None, "kind": "instance", "parent_id": screwdriver.pk},
    ]
    ann = add_prediction(image, s1234, rect_mask(240, 320, 40, 40, 200, 120), candidates=candidates)
    mark_prelabeled(image)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    stage_drawn(page, image.pk)

    expect(page.get_by_test_id(f"class-label-{ann.pk}")).to_have_text("отвертка › отвертка-1234")
    page.get_by_test_id(f"object-{ann.pk}").click()
    picker = page.get_by_test_id(f"class-picker-{ann.pk}")
    expect(picker).to_be_visible()
    expect(picker.locator('optgroup[label="отвертка"] option')).to_have_count(3)  # the type and its 2 instances
    expect(page.get_by_test_id("candidate-отвертка-2345")).to_have_attribute("data-kind", "instance")
    shot(page, "review-instance")

    picker.select_option(label="отвертка › отвертка-2345")
    expect(page.get_by_test_id(f"class-label-{ann.pk}")).to_have_text("отвертка › отвертка-2345")
    ann.refresh_from_db()
    assert ann.label_class_id == s2345.pk
    assert Annotation.objects.get(pk=ann.pk).label_class_id == s2345.pk


def test_an_object_of_a_deactivated_class_shows_that_class_in_the_picker(page, login_as):
    """The picker offers active classes only; an object whose class was deactivated showed the
    first active class as its own, and choosing that one did nothing."""
    owner = make_user("olga")
    proj = make_project(owner, name="Hand tools")
    make_class(proj, "hammer", color="#4363d8")
    wrench = make_class(proj, "wrench", color="#f58231")
    image = make_image(proj, width=320, height=240)
    ann = add_prediction(image, wrench, rect_mask(240, 320, 40, 40, 200, 120))
    mark_prelabeled(image)
    LabelClass.objects.filter(pk=wrench.pk).update(active=False)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    stage_drawn(page, image.pk)
    page.get_by_test_id(f"object-{ann.pk}").click()
    picker = page.get_by_test_id(f"class-picker-{ann.pk}")
    expect(picker).to_have_value(str(wrench.pk))
    expect(picker.locator("option:checked")).to_have_text("wrench (inactive)")
    picker.select_option(label="hammer")  # a real change now: the object moves to hammer
    expect(page.get_by_test_id(f"class-label-{ann.pk}")).to_have_text("hammer")
    assert Annotation.objects.get(pk=ann.pk).label_class.name == "hammer"


@pytest.mark.parametrize("width, height, fmt", [(6000, 1, "PNG"), (64, 48, "TIFF")])
def test_review_draws_photos_of_any_accepted_shape_and_format(page, login_as, settings, width, height, fmt):
    """A 6000x1 photo scaled for the screen asked createImageBitmap for 0 px and the page showed
    its error; a TIFF (browsers cannot decode it) showed "could not be decoded"."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    # Uploads refuse such strips now (MAX_IMAGE_ASPECT), but images stored before that must still open.
    settings.MIN_IMAGE_SIDE, settings.MAX_IMAGE_ASPECT = 1, 10**6

    from backend.images.services import upload_images
    from tests.backend.factories import image_bytes

    owner = make_user("olga")
    proj = make_project(owner, name="Hand tools")
    data = image_bytes(width, height, (30, 120, 200), fmt=fmt)
    image = upload_images(project=proj, user=owner, files=[SimpleUploadedFile(f"odd.{fmt.lower()}", data)]).created[0]
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    stage_drawn(page, image.pk)
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("toast")).to_have_count(0)
