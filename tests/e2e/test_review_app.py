"""The review app in a real browser: login, upload, keyboard review, class fix, brush, conflicts."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.annotations.models import Annotation, ReviewState
from backend.images.models import Image, ImageStatus
from tests.backend.factories import image_bytes, zip_bytes

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import in_thread, open_review, stage_drawn, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-123"


@pytest.fixture
def project():
    owner = make_user("olga")
    proj = make_project(owner, name="Hand tools")
    return proj, owner


def test_login_and_logout(page, project):
    proj, owner = project
    page.goto("/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("whoami")).to_have_text("olga")
    expect(page.get_by_role("link", name="Hand tools")).to_be_visible()
    page.get_by_role("link", name="Hand tools").click()
    expect(page.get_by_test_id("status-counts")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("input[name=username]")).to_be_visible()


def test_upload_zip_shows_per_file_errors(page, project, login_as, celery_worker):  # uploads finish on the cpu queue
    proj, owner = project
    login_as(owner)
    archive = zip_bytes({
        "good.png": image_bytes(40, 30, (10, 200, 10)),
        "broken.png": b"this is not an image at all",
        "also-good.jpg": image_bytes(20, 20, (200, 10, 10), fmt="JPEG"),
    })
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[{"name": "batch.zip", "mimeType": "application/zip", "buffer": archive}])
    item = page.get_by_test_id("upload-item")
    expect(item.get_by_test_id("upload-created")).to_have_text("2 added")
    expect(item.get_by_test_id("upload-errors")).to_contain_text("broken.png")
    assert Image.objects.filter(project=proj).count() == 2


def test_review_with_keyboard_only(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer", color="#e6194b")
    wrench = make_class(proj, "wrench", color="#3cb44b")
    images = [make_image(proj, width=320, height=240, seed=i + 1) for i in range(2)]
    for im in images:
        add_prediction(im, hammer, rect_mask(240, 320, 20, 20, 120, 100))
        add_prediction(im, wrench, rect_mask(240, 320, 150, 120, 300, 220))
    mark_prelabeled(*images)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review")
    page.wait_for_url(re.compile(rf"/p/{proj.pk}/review/{images[0].pk}$"))
    stage_drawn(page, images[0].pk)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/review/{images[1].pk}$"))
    stage_drawn(page, images[1].pk)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    for im in images:
        im.refresh_from_db()
        assert im.status == ImageStatus.DONE
    assert not Annotation.objects.filter(project=proj).exclude(class_review=ReviewState.ACCEPTED).exists()
    assert not Annotation.objects.filter(project=proj).exclude(mask_review=ReviewState.ACCEPTED).exists()


def test_fix_class_from_top_k(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer", color="#e6194b")
    wrench = make_class(proj, "wrench", color="#3cb44b")
    image = make_image(proj, width=200, height=150, seed=3)
    ann = add_prediction(image, wrench, rect_mask(150, 200, 30, 30, 120, 110), margin=0.02, candidates=[
        {"class_id": wrench.pk, "name": "wrench", "score": 0.51, "exemplar_id": None},
        {"class_id": hammer.pk, "name": "hammer", "score": 0.49, "exemplar_id": None},
    ])
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    row = page.get_by_test_id(f"object-{ann.pk}")
    expect(row).to_have_attribute("data-class", "wrench")
    row.get_by_test_id("candidate-hammer").click()
    expect(row).to_have_attribute("data-class", "hammer")
    ann.refresh_from_db()
    assert ann.label_class_id == hammer.pk and ann.class_review == ReviewState.ACCEPTED
    page.keyboard.press("1")  # back to the top candidate, by keyboard
    expect(row).to_have_attribute("data-class", "wrench")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).label_class_id == wrench.pk, what="class PATCH")
    page.keyboard.press("/")  # search by name
    page.keyboard.type("ham")
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("data-class", "hammer")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).label_class_id == hammer.pk, what="class PATCH from search")


def test_brush_stroke_patches_the_mask(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    image = make_image(proj, width=400, height=300, seed=4)
    ann = add_prediction(image, hammer, rect_mask(300, 400, 10, 10, 60, 60))
    mark_prelabeled(image)
    area_before, version_before = ann.area, ann.version
    login_as(owner)
    open_review(page, proj, image)
    page.keyboard.press("b")
    box = page.get_by_test_id("review-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2  # the image centre: outside the mask
    page.mouse.move(cx - 60, cy)
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(cx - 60 + i * 10, cy)
    page.mouse.up()
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).version > version_before, what="mask PATCH")
    ann.refresh_from_db()
    assert ann.area > area_before + 500
    assert ann.mask_review == ReviewState.ACCEPTED
    # Undo restores the original mask on the server too.
    page.keyboard.press("z")
    wait_for(lambda: Annotation.objects.get(pk=ann.pk).area == area_before, what="undo PATCH")


def test_conflict_shows_a_message_and_reloads(page, project, login_as):
    from backend.annotations import services

    proj, owner = project
    hammer = make_class(proj, "hammer")
    wrench = make_class(proj, "wrench")
    other = make_user("boris")
    add_member(proj, other, "admin")
    image = make_image(proj, width=200, height=150, seed=5)
    ann = add_prediction(image, hammer, rect_mask(150, 200, 30, 30, 120, 110))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    # Another admin changes the class behind our back (through our claim: only an admin's forced write can).
    services.update_annotation(project=proj, annotation_id=ann.pk, user=other, version=ann.version, class_id=wrench.pk, force=True)
    page.keyboard.press("a")
    expect(page.get_by_role("alert")).to_contain_text("This object was changed elsewhere")
    expect(page.get_by_test_id(f"object-{ann.pk}")).to_have_attribute("data-class", "wrench")
    ann.refresh_from_db()
    assert ann.label_class_id == wrench.pk and ann.mask_review == ReviewState.PENDING


def test_another_reviewers_change_appears_live(page, project, login_as):
    from backend.annotations import services

    proj, owner = project
    hammer = make_class(proj, "hammer")
    other = make_user("boris")
    add_member(proj, other, "admin")  # we hold the claim: only an admin's forced write gets through
    image = make_image(proj, width=200, height=150, seed=6)
    ann = add_prediction(image, hammer, rect_mask(150, 200, 30, 30, 120, 110))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    row = page.get_by_test_id(f"object-{ann.pk}")
    expect(row).to_have_attribute("data-mask-review", "pending")
    page.wait_for_timeout(300)  # let the websocket join the project group
    in_thread(services.review_annotation, project=proj, annotation_id=ann.pk, user=other, version=ann.version,
              target="mask", decision="rejected", force=True)
    expect(row).to_have_attribute("data-mask-review", "rejected")


def test_image_claimed_by_someone_else_is_read_only(page, project, login_as):
    from datetime import timedelta

    from django.utils import timezone

    proj, owner = project
    hammer = make_class(proj, "hammer")
    other = make_user("boris")
    add_member(proj, other, "reviewer")
    image = make_image(proj, width=200, height=150, seed=7)
    ann = add_prediction(image, hammer, rect_mask(150, 200, 30, 30, 120, 110))
    mark_prelabeled(image)
    Image.objects.filter(pk=image.pk).update(claimed_by=other, claim_expires_at=timezone.now() + timedelta(minutes=5))
    login_as(owner)
    open_review(page, proj, image)
    expect(page.get_by_test_id("locked")).to_contain_text("boris")
    expect(page.get_by_test_id("accept-all")).to_be_disabled()
    page.keyboard.press("a")
    expect(page.locator(".note").filter(has_text="read-only")).to_be_visible()
    ann.refresh_from_db()
    assert ann.class_review == ReviewState.PENDING


def test_start_prelabel_job_and_see_live_progress(page, project, login_as, celery_worker):
    """The dashboard starts a real job; the real worker runs the tiny pipeline; progress arrives live."""
    from backend.jobs.models import PrelabelJob

    proj, owner = project
    for i in range(2):
        make_image(proj, width=64, height=48, seed=20 + i)
    login_as(owner)
    page.goto(f"/p/{proj.pk}")
    form = page.get_by_test_id("prelabel-form")
    form.locator("input[name=job-prompts]").fill("hammer . wrench")
    form.get_by_role("button", name="Run pre-annotation").click()
    wait_for(lambda: PrelabelJob.objects.filter(project=proj).exists(), what="job row")
    job = PrelabelJob.objects.get(project=proj)
    assert job.total == 2 and job.settings_snapshot["prompts"] == ["hammer", "wrench"]
    row = page.get_by_test_id(f"job-{job.pk}")
    expect(row).to_be_visible()
    expect(row).to_contain_text("2/2", timeout=120_000)
    expect(row.locator("progress")).to_have_attribute("value", "100")
    job.refresh_from_db()
    assert job.status == "done" and job.processed == 2, job.error


def test_every_page_renders(page, project, login_as):
    """Visits each page (screenshots under test-results/pages/ to look at) with no script errors."""
    from pathlib import Path

    proj, owner = project
    hammer = make_class(proj, "hammer", color="#e6194b")
    wrench = make_class(proj, "wrench", color="#3cb44b")
    make_class(proj, "pliers", color="#4363d8", active=False)
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.gallery.services import upload_exemplars
    for cls, color in ((hammer, (200, 40, 40)), (wrench, (40, 160, 40))):
        upload_exemplars(project=proj, user=owner, class_id=cls.pk, files=[
            SimpleUploadedFile(f"{cls.name}{i}.png", image_bytes(48, 48, tuple((c + 30 * i) % 256 for c in color))) for i in range(3)])
    image = make_image(proj, width=640, height=480, seed=9)
    from .seed import ellipse_mask
    ex = list(proj.gallery.order_by("pk").values_list("pk", flat=True))
    add_prediction(image, hammer, ellipse_mask(480, 640, 200, 200, 120, 60), margin=0.04, candidates=[
        {"class_id": hammer.pk, "name": "hammer", "score": 0.62, "exemplar_id": ex[0] if ex else None},
        {"class_id": wrench.pk, "name": "wrench", "score": 0.58, "exemplar_id": ex[-1] if ex else None},
    ])
    add_prediction(image, wrench, rect_mask(480, 640, 380, 250, 600, 420))
    mark_prelabeled(image)
    make_image(proj, width=64, height=48, seed=10)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    out = Path(__file__).resolve().parents[2] / "test-results" / "pages"
    out.mkdir(parents=True, exist_ok=True)
    login_as(owner)
    for name, url, ready in [
        ("projects", "/", "text=Hand tools"),
        ("dashboard", f"/p/{proj.pk}", "[data-testid=status-counts]"),
        ("upload", f"/p/{proj.pk}/upload", "text=Drop images"),
        ("images", f"/p/{proj.pk}/images", "text=img9.png"),
        ("classes", f"/p/{proj.pk}/classes", "[data-testid=class-hammer]"),
        ("review", f"/p/{proj.pk}/review/{image.pk}", f'[data-overlays-ready="{image.pk}"][data-image-ready="{image.pk}"]'),
    ]:
        page.goto(url)
        page.wait_for_selector(ready)
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / f"{name}.png"))
    page.keyboard.press("?")
    page.screenshot(path=str(out / "help.png"))
    assert not errors, errors


def test_server_refusal_of_a_claimed_image_names_the_holder(page, project, login_as):
    """The page believed it held the image; the server says boris does: a clear message, the
    page turns read-only and nothing is written."""
    from datetime import timedelta

    from django.utils import timezone

    proj, owner = project
    hammer = make_class(proj, "hammer")
    other = make_user("boris")
    add_member(proj, other, "reviewer")
    image = make_image(proj, width=200, height=150, seed=8)
    ann = add_prediction(image, hammer, rect_mask(150, 200, 30, 30, 120, 110))
    mark_prelabeled(image)
    login_as(owner)
    open_review(page, proj, image)
    wait_for(lambda: Image.objects.get(pk=image.pk).claimed_by_id == owner.pk, what="our claim")
    # Our claim lapsed and boris took the image (no live event reached this page).
    Image.objects.filter(pk=image.pk).update(claimed_by=other, claim_expires_at=timezone.now() + timedelta(minutes=5))
    page.keyboard.press("a")
    expect(page.get_by_role("alert")).to_contain_text("boris holds this image")
    expect(page.get_by_test_id("locked")).to_contain_text("boris")
    expect(page.get_by_test_id("accept-all")).to_be_disabled()
    ann.refresh_from_db()
    assert (ann.class_review, ann.mask_review, ann.version) == (ReviewState.PENDING, ReviewState.PENDING, 1)


def test_an_annotators_edit_shows_pending_review(page, project, login_as):
    proj, _ = project
    hammer = make_class(proj, "hammer")
    wrench = make_class(proj, "wrench")
    annotator = make_user("anna")
    add_member(proj, annotator, "annotator")
    image = make_image(proj, width=200, height=150, seed=9)
    ann = add_prediction(image, wrench, rect_mask(150, 200, 30, 30, 120, 110), candidates=[
        {"class_id": wrench.pk, "name": "wrench", "score": 0.51, "exemplar_id": None},
        {"class_id": hammer.pk, "name": "hammer", "score": 0.49, "exemplar_id": None},
    ])
    mark_prelabeled(image)
    login_as(annotator)
    open_review(page, proj, image)
    row = page.get_by_test_id(f"object-{ann.pk}")
    expect(row.get_by_test_id(f"awaiting-{ann.pk}")).to_have_count(0)
    row.get_by_test_id("candidate-hammer").click()
    expect(row).to_have_attribute("data-class", "hammer")
    expect(row).to_have_attribute("data-class-review", "pending")
    expect(row.get_by_test_id(f"awaiting-{ann.pk}")).to_contain_text("pending review")
    ann.refresh_from_db()
    assert ann.label_class_id == hammer.pk and ann.class_review == ReviewState.PENDING


def test_the_queue_link_lets_a_reviewer_pick_filters_before_the_next_image(page, project, login_as):
    """The Queue link jumped straight to the next image: its status and class filters only flashed."""
    proj, owner = project
    hammer = make_class(proj, "hammer", color="#e6194b")
    wrench = make_class(proj, "wrench", color="#3cb44b")
    first, second = (make_image(proj, width=320, height=240, seed=i + 1) for i in range(2))
    add_prediction(first, hammer, rect_mask(240, 320, 20, 20, 120, 100))
    add_prediction(second, wrench, rect_mask(240, 320, 150, 120, 300, 220))
    mark_prelabeled(first, second)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review/{first.pk}")
    stage_drawn(page, first.pk)
    page.get_by_test_id("queue-link").click()
    expect(page.get_by_test_id("queue-pick")).to_be_visible()
    page.wait_for_timeout(500)
    assert page.url.endswith(f"/p/{proj.pk}/review?filters"), page.url  # it stays for the choice
    page.get_by_label("queue class").select_option(label="wrench")
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("queue-pick")).to_be_visible()
    page.get_by_test_id("queue-start").click()
    page.wait_for_url(re.compile(rf"/p/{proj.pk}/review/{second.pk}$"))
