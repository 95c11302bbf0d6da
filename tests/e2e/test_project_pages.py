"""The project pages in a real browser: export, import, members, settings, 404, toasts, long names."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect
from pycocotools.coco import COCO

from backend.annotations.models import Annotation, ReviewState
from backend.images.models import Image
from backend.jobs.models import PrelabelJob
from backend.jobs.services import start_job
from backend.projects.models import Membership, Project
from tests.backend.factories import image_bytes, zip_bytes

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_staff, make_user, rect_mask
from .steps import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-pages")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def cpu_worker(django_db_setup, django_db_blocker):
    """A real Celery worker on the CPU queue only (exports and imports run there)."""
    from tests.worker import start_worker, stop_worker

    proc = start_worker(queues=[settings.QUEUE_CPU], name="pages")
    yield proc
    stop_worker(proc)


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1400, f"the page is {width} px wide"


# --------------------------------------------------------------------------- export


def test_export_approved_set_and_download_it(page, project, login_as, cpu_worker, tmp_path):
    proj, owner = project
    hammer, wrench = make_class(proj, "hammer", color="#e6194b"), make_class(proj, "wrench", color="#3cb44b")
    img1, img2 = make_image(proj, seed=1), make_image(proj, seed=2)
    approved = add_prediction(img1, hammer, rect_mask(48, 64, 4, 4, 30, 30))
    other_class = add_prediction(img2, wrench, rect_mask(48, 64, 10, 10, 40, 40))
    pending = add_prediction(img2, hammer, rect_mask(48, 64, 2, 2, 12, 12))
    Annotation.objects.filter(pk__in=[approved.pk, other_class.pk]).update(
        class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED,
    )
    login_as(owner)
    page.goto(f"/p/{proj.pk}")
    page.get_by_role("link", name="Export").click()
    expect(page.get_by_role("heading", name="Export", exact=True)).to_be_visible()
    page.select_option("select[name=export-format]", "coco-rle")
    expect(page.get_by_label("Approved only (class and mask accepted)")).to_be_checked()
    page.get_by_test_id("export-classes").get_by_text("hammer").click()  # only hammers
    page.get_by_role("button", name="Start export").click()
    row = page.locator("[data-testid^=export-]").filter(has=page.get_by_text("COCO (RLE)")).first
    expect(row.locator(".badge")).to_have_text("done", timeout=30_000)
    expect(row).to_contain_text("1 on 1 image")
    expect(row).to_contain_text("olga")
    expect(row).to_contain_text("1 class")
    shot(page, "export-done")
    with page.expect_download() as info:
        row.get_by_test_id("export-download").click()
    path = tmp_path / "export.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        (tmp_path / "instances.json").write_bytes(zf.read("annotations/instances.json"))
    coco = COCO(str(tmp_path / "instances.json"))
    assert coco.getImgIds() == [img1.pk]
    assert [a["id"] for a in coco.loadAnns(coco.getAnnIds())] == [approved.pk]
    assert coco.annToMask(coco.loadAnns([approved.pk])[0]).sum() == 26 * 26
    assert pending.pk not in coco.getAnnIds() and other_class.pk not in coco.getAnnIds()


def test_export_bad_image_ids_are_shown_next_to_the_field(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/export")
    page.fill("input[name=image-ids]", "3-x")
    page.get_by_role("button", name="Start export").click()
    expect(page.locator(".field-error")).to_contain_text('"3-x" is not an image id')
    page.fill("input[name=image-ids]", "999999")
    page.get_by_role("button", name="Start export").click()
    expect(page.locator(".field-error")).to_contain_text("Image 999999 does not exist in this project")


# --------------------------------------------------------------------------- import


def test_import_with_one_bad_item_names_it_and_applies_nothing(page, project, login_as, cpu_worker, tmp_path):
    proj, owner = project
    make_class(proj, "hammer")
    img = make_image(proj, seed=1)  # "img1.png"
    doc = {
        "images": [{"id": 1, "file_name": "img1.png", "width": img.width, "height": img.height}],
        "categories": [{"id": 1, "name": "hammer"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 2, 20, 20], "segmentation": [[2, 2, 22, 2, 22, 22, 2, 22]]},
            {"id": 11, "image_id": 1, "category_id": 99, "bbox": [5, 5, 10, 10], "segmentation": [[5, 5, 15, 5, 15, 15]]},
        ],
    }
    path = tmp_path / "tools-coco.json"
    path.write_text(json.dumps(doc))
    login_as(owner)
    page.goto(f"/p/{proj.pk}/import")
    page.select_option("select[name=import-format]", "coco")
    page.set_input_files("input[name=import-file]", str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    outcome = page.get_by_test_id("import-outcome")
    expect(outcome).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(outcome).to_contain_text("nothing was applied")
    expect(page.get_by_test_id("import-errors")).to_contain_text("tools-coco.json: annotation 11")
    expect(page.get_by_test_id("import-errors")).to_contain_text("unknown category_id 99")
    expect(page.get_by_test_id("import-list")).to_contain_text("nothing applied (1 error)")
    shot(page, "import-failed")
    assert Annotation.objects.filter(project=proj).count() == 0

    # The fixed file goes through, as accepted (the owner is an admin).
    doc["annotations"].pop()
    path.write_text(json.dumps(doc))
    page.set_input_files("input[name=import-file]", str(path))
    page.check("input[name=as-accepted]")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-outcome")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.get_by_test_id("import-outcome")).to_contain_text("1 object added to 1 image, as accepted")
    ann = Annotation.objects.get(project=proj)
    assert ann.class_review == ReviewState.ACCEPTED


def test_annotator_cannot_import_as_accepted(page, project, login_as):
    proj, _ = project
    ann = make_user("andy")
    add_member(proj, ann, "annotator")
    login_as(ann)
    page.goto(f"/p/{proj.pk}/import")
    expect(page.locator("input[name=as-accepted]")).to_be_disabled()
    expect(page.locator("input[name=create-classes]")).to_be_disabled()
    expect(page.get_by_role("link", name="Members")).to_have_count(0)
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    page.goto(f"/p/{proj.pk}/settings")
    expect(page.get_by_test_id("forbidden")).to_contain_text("can't change settings")


# --------------------------------------------------------------------------- members


def test_admin_adds_a_member_and_changes_the_role(page, project, login_as):
    proj, owner = project
    rita = make_user("rita")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/members")
    page.fill("input[name=member-username]", "nobody-here")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_test_id("add-member").get_by_role("alert")).to_contain_text("No active user named 'nobody-here'")
    page.fill("input[name=member-username]", "rita")
    page.select_option("select[name=member-role]", "reviewer")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_test_id("member-rita")).to_be_visible()
    assert Membership.objects.get(project=proj, user=rita).role == "reviewer"
    page.get_by_label("role of rita").select_option("annotator")
    expect(page.get_by_text("rita is now annotator.")).to_be_visible()
    wait_for(lambda: Membership.objects.get(project=proj, user=rita).role == "annotator", what="role change")
    shot(page, "members")
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("member-rita").get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("member-rita")).to_have_count(0)
    assert not Membership.objects.filter(project=proj, user=rita).exists()


def test_staff_creates_a_user_who_sets_a_password_at_first_login(browser, live_url, page, login_as):
    root = make_staff("root")
    proj = make_project(root, name="Staffed")
    login_as(root)
    page.goto(f"/p/{proj.pk}/members")
    page.fill("input[name=new-username]", "nina")
    page.select_option("select[name=new-role]", "reviewer")
    page.get_by_role("button", name="Create user").click()
    secret = page.get_by_test_id("one-time-password").locator("code")
    expect(secret).to_be_visible()
    password = secret.inner_text().strip()
    assert len(password) >= 12
    expect(page.get_by_test_id("member-nina")).to_be_visible()
    shot(page, "members-new-user")

    other = browser.new_context(base_url=live_url, viewport={"width": 1400, "height": 900})
    p2 = other.new_page()
    try:
        p2.goto("/")
        p2.fill("input[name=username]", "nina")
        p2.fill("input[name=password]", password)
        p2.click("button[type=submit]")
        expect(p2.get_by_test_id("set-password")).to_be_visible()
        p2.fill("input[name=current_password]", password)
        p2.fill("input[name=new_password]", "nina-own-secret")
        p2.fill("input[name=new_password_again]", "nina-own-secret")
        p2.screenshot(path=str(SHOTS / "set-password.png"))
        p2.get_by_role("button", name="Set password").click()
        expect(p2.get_by_role("link", name="Staffed")).to_be_visible()
    finally:
        other.close()


# --------------------------------------------------------------------------- settings


def test_settings_are_validated_and_saved(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/settings")
    page.fill("input[name=box_threshold]", "1.5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("error-box_threshold")).to_have_text("A number from 0 to 1.")
    page.fill("input[name=box_threshold]", "0.42")
    page.fill("input[name=top_k]", "7")
    page.fill("textarea[name=prompts]", "hammer\nscrewdriver")
    page.uncheck("input[name=unique_classes_per_image]")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    proj.refresh_from_db()
    assert (proj.box_threshold, proj.top_k, proj.prompts, proj.unique_classes_per_image) == (0.42, 7, ["hammer", "screwdriver"], False)
    assert proj.version == 2
    # The server's own checks land next to their field too.
    page.locator("input[name=name]").evaluate("(el) => el.removeAttribute('maxlength')")  # past the input's own cap
    page.fill("input[name=name]", "x" * 250)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("label.field", has=page.locator("input[name=name]")).locator(".field-error")).to_contain_text("200 characters")
    shot(page, "settings-error")
    # Someone else saved meanwhile: a clear conflict, the form reloads their version.
    page.reload()
    expect(page.locator("input[name=box_threshold]")).to_have_value("0.42")  # the form holds version 2
    Project.objects.filter(pk=proj.pk).update(version=9, box_threshold=0.3)
    page.fill("input[name=nms_iou]", "0.6")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone else changed these settings")
    expect(page.locator("input[name=box_threshold]")).to_have_value("0.3")


# --------------------------------------------------------------------------- 404, toasts


def test_unknown_routes_show_a_404(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/no-such-page")
    expect(page.get_by_test_id("not-found")).to_contain_text("Page not found")
    expect(page.get_by_test_id("status-counts")).to_have_count(0)
    shot(page, "not-found")
    page.get_by_role("link", name="Back to the project dashboard").click()
    expect(page.get_by_test_id("status-counts")).to_be_visible()
    page.goto("/nowhere/at/all")
    expect(page.get_by_test_id("not-found")).to_be_visible()


def test_toasts_dismiss_and_stay_on_their_page(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/members")
    # Removing the only admin is refused: an error toast, which stays until dismissed…
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("member-olga").get_by_role("button", name="Remove").click()
    toast = page.get_by_test_id("toast")
    expect(toast).to_contain_text("Couldn't remove olga")
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("member-olga").get_by_role("button", name="Remove").click()
    expect(toast).to_have_count(1)
    page.wait_for_timeout(500)
    # …or until the user goes to another page.
    page.get_by_role("link", name="Images").click()
    expect(page.get_by_test_id("images-table")).to_be_visible()
    expect(toast).to_have_count(0)


# --------------------------------------------------------------------------- jobs, long names, list state


def test_job_numbers_per_project_and_cancel_asks_first(page, project, login_as, settings):
    proj, owner = project
    # A queue no worker reads: the session's worker (started by other tests) must not run these
    # jobs, or they finish and the Cancel button goes away under the click.
    settings.QUEUE_GPU = "nobody-reads-this-gpu-queue"
    other = make_project(owner, name="Other")
    make_image(other, seed=7)
    make_image(proj, seed=8)
    start_job(project=other, user=owner, images="all")  # takes a global id; numbers stay per project
    job = start_job(project=proj, user=owner, images="all")
    assert job.number == 1
    login_as(owner)
    page.goto(f"/p/{proj.pk}")
    row = page.get_by_test_id(f"job-{job.id}")
    expect(row.locator("b").first).to_have_text("#1")
    shot(page, "dashboard-job-number")
    page.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(300)
    job.refresh_from_db()
    assert job.status in ("queued", "running")
    messages: list[str] = []
    page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
    row.get_by_role("button", name="Cancel").click()
    expect(row.locator(".badge")).to_have_text("cancelled")
    assert "Cancel job #1?" in messages[0]
    assert PrelabelJob.objects.get(pk=job.pk).status == "cancelled"


def test_long_names_do_not_widen_pages_and_empty_zip_warns(page, project, login_as, tmp_path, celery_worker):
    proj, owner = project
    long_name = ("very-long-file-name-" * 12)[:245] + ".png"
    login_as(owner)
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[{"name": long_name, "mimeType": "image/png", "buffer": image_bytes(40, 30)}])
    expect(page.get_by_test_id("upload-created")).to_have_text("1 added")
    no_horizontal_scroll(page)
    expect(page.locator(".upload b.ellipsis").first).to_have_attribute("title", long_name)
    page.set_input_files("input[name=files]", files=[{"name": "empty.zip", "mimeType": "application/zip", "buffer": zip_bytes({"photos/": b""})}])
    expect(page.get_by_test_id("upload-empty")).to_contain_text("This archive holds no images")
    shot(page, "upload-long-and-empty")
    page.goto(f"/p/{proj.pk}/images")
    cell = page.locator(".cell-name .ellipsis", has_text="very-long")
    expect(cell).to_have_attribute("title", long_name)
    no_horizontal_scroll(page)
    shot(page, "images-long-name")


def test_image_filters_and_sort_stay_in_the_url(page, project, login_as):
    proj, owner = project
    a, b, c = (make_image(proj, seed=s) for s in (11, 12, 13))
    Image.objects.filter(pk=b.pk).update(status="done", original_name="b.png")
    Image.objects.filter(pk=c.pk).update(status="done", original_name="a.png")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    page.get_by_label("status filter").select_option("done")
    wait_for(lambda: "status=done" in page.url, what="status in the URL")
    page.get_by_role("button", name="Name").click()
    wait_for(lambda: "ordering=original_name" in page.url, what="ordering in the URL")
    rows = page.locator("[data-testid=images-table] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("a.png")
    page.reload()
    expect(page.get_by_label("status filter")).to_have_value("done")
    expect(rows.first).to_contain_text("a.png")
    page.get_by_role("button", name="Name").click()  # descending
    wait_for(lambda: "ordering=-original_name" in page.url, what="descending order in the URL")
    expect(rows.first).to_contain_text("b.png")
