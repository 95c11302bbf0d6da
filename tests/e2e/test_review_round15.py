"""Black-box round 15 in the review workspace: a suggestion whose class was deactivated since the
scoring took its digit and answered a red "Couldn't save the class: Class 'square' is inactive";
it is shown greyed and its digit says why, sending nothing."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation
from backend.projects.models import LabelClass

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review, toast

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_deactivated_suggestion_is_greyed_and_its_digit_says_so(page, login_as):
    owner = make_user("olga")
    proj = make_project(owner, name="Shapes")
    circle, square = make_class(proj, "circle"), make_class(proj, "square")
    image = make_image(proj, width=400, height=300, seed=7)
    ann = add_prediction(image, circle, rect_mask(300, 400, 10, 10, 60, 60), candidates=[
        {"class_id": circle.pk, "name": "circle", "score": 0.9, "exemplar_id": None},
        {"class_id": square.pk, "name": "square", "score": 0.8, "exemplar_id": None},
    ])
    mark_prelabeled(image)
    LabelClass.objects.filter(pk=square.pk).update(active=False)
    patches = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    expect(page.get_by_test_id("candidate-square")).to_be_disabled()
    page.keyboard.press("2")
    expect(toast(page, "“square” is deactivated: choose another class")).to_be_visible()
    expect(toast(page, "Couldn't save the class")).to_have_count(0)
    page.wait_for_timeout(300)
    assert not patches, patches
    assert Annotation.objects.get(pk=ann.pk).label_class_id == circle.pk


def test_an_admin_deletes_an_image_someone_holds_after_the_confirm_names_them(page, login_as):
    """The server now refuses deleting a held image unless forced (black-box round 15); the Images
    page's confirm names the holder, and once accepted the deletion is meant: it is forced."""
    from datetime import timedelta

    from django.utils import timezone

    from backend.images.models import Image

    owner, rita = make_user("olga"), make_user("rita")
    proj = make_project(owner, name="Held")
    add_member(proj, rita, "reviewer")
    held, free = make_image(proj, width=40, height=30, seed=70), make_image(proj, width=40, height=30, seed=71)
    Image.objects.filter(pk__in=[held.pk, free.pk]).update(claimed_by=rita, claim_expires_at=timezone.now() + timedelta(minutes=10))
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    page.get_by_test_id(f"pick-image-{held.pk}").check()
    page.get_by_test_id("delete-selected").click()
    expect(toast(page, "Deleted 1 image")).to_be_visible()
    assert "is open by rita now" in asked[-1], asked
    assert list(Image.objects.filter(project=proj).values_list("pk", flat=True)) == [free.pk]
