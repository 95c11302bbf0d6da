"""Project pages, round 9 of the black-box report (ui9): narrow windows keep the image names and
never scroll the page sideways, the review stage is not covered by its panel on a phone, a long
description is cut on its project card, a too long project name is said in words, a class rename
that failed keeps what was typed, the upload total says what was cancelled, and an import is named
by its file and time rather than an id counted across projects."""
from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import expect

from backend.exchange.models import ImportJob
from backend.projects.models import LabelClass
from tests.backend.factories import image_bytes

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_staff, make_user, mark_prelabeled, rect_mask
from .steps import open_review, sideways, toast, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("pavel")
    return make_project(owner, name="Workbench"), owner


def box(locator) -> dict:
    b = locator.bounding_box()
    assert b is not None, locator
    return b


def test_narrow_windows_keep_the_image_names_and_never_scroll_the_page_sideways(page, login_as):
    """At 800 px the Name column was 5 px wide (the names, the only link into an image, vanished)
    and "Name" was drawn over "Size"; at 375 px Settings, Members, Images and Classes scrolled sideways."""
    root = make_staff("root9")  # an instance admin: the widest Members table (Reset password)
    proj = make_project(root, name="Workbench")
    image = make_image(proj, width=400, height=300, seed=91)
    make_class(proj, "hammer")
    add_member(proj, make_user("rev1"), "reviewer")
    login_as(root)

    for width in (800, 375):
        page.set_viewport_size({"width": width, "height": 740})
        page.goto(f"/p/{proj.pk}/images")
        link = page.get_by_role("link", name=image.original_name)
        expect(link).to_have_attribute("title", image.original_name)
        cell, name = box(page.locator("td.cell-name").first), box(link)
        assert cell["width"] >= 150, f"{width} px: the name column is {cell['width']} px"
        assert name["width"] >= 50 and name["x"] >= 0 and name["x"] + name["width"] <= width, f"{width} px: {name}"
        name_head = box(page.get_by_role("columnheader", name="Name").get_by_role("button"))
        size_head = box(page.get_by_role("columnheader", name="Size"))
        assert name_head["x"] + name_head["width"] <= size_head["x"], "Name and Size overlap"
        assert sideways(page) == 0, f"{width} px: the Images page scrolls sideways"

    for path, ready in (("settings", page.get_by_test_id("settings-form")), ("members", page.get_by_test_id("member-rev1")),
                        ("classes", page.get_by_test_id("class-hammer"))):
        page.goto(f"/p/{proj.pk}/{path}")
        expect(ready).to_be_visible()
        assert sideways(page) == 0, f"375 px: /{path} scrolls sideways by {sideways(page)} px"


def test_on_a_phone_the_object_panel_goes_under_the_review_stage(page, project, login_as):
    """At 375 x 740 the 380 px panel covered the stage (its canvas was 0 px wide), yet "Accept all &
    next image" accepted the objects no one could see."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=92)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 40, 40))
    mark_prelabeled(image)
    login_as(owner)
    page.set_viewport_size({"width": 375, "height": 740})
    open_review(page, proj, image)
    canvas, side = box(page.get_by_test_id("review-canvas")), box(page.locator("aside.side"))
    assert canvas["width"] >= 370 and canvas["height"] >= 200, canvas
    assert side["y"] >= canvas["y"] + canvas["height"] - 1, (canvas, side)
    # Stage and panel both in the window: selecting an object did not scroll the stage away.
    assert canvas["y"] >= 0 and canvas["y"] + canvas["height"] <= 740, canvas
    expect(page.get_by_test_id("accept-all")).to_be_in_viewport(ratio=1)
    assert sideways(page) == 0

    page.set_viewport_size({"width": 1300, "height": 800})  # a wide window keeps the panel beside it
    until(page, lambda: box(page.get_by_test_id("review-canvas"))["width"] > 800, what="the stage to widen")
    canvas, side = box(page.get_by_test_id("review-canvas")), box(page.locator("aside.side"))
    assert side["x"] >= canvas["x"] + canvas["width"] - 1 and side["y"] < canvas["y"] + canvas["height"], (canvas, side)


def test_a_long_description_is_cut_to_a_few_lines_on_its_project_card(page, project, login_as):
    """A 5,000-character description made every card of its row 2,185 px tall."""
    proj, owner = project
    proj.description = "A very long note about this project. " * 130
    proj.save(update_fields=["description"])
    login_as(owner)
    page.goto("/")
    card = page.locator("li.card").filter(has=page.get_by_role("link", name="Workbench"))
    expect(card).to_be_visible()
    assert box(card)["height"] < 200, box(card)
    assert card.locator("[title]").evaluate_all("(els) => els.map((e) => e.title)")[-1] == proj.description


def test_a_too_long_project_name_is_stopped_and_said_in_words(page, project, login_as):
    """A 201-character name got "Couldn't create the project: name: Ensure this field has no more
    than 200 characters." (DRF's text) and neither name input had a maxlength."""
    proj, owner = project
    login_as(owner)
    too_long = "n" * 201
    page.goto("/")
    name = page.locator("input[name=project-name]")
    expect(name).to_have_attribute("maxlength", "200")
    name.evaluate("(el) => el.removeAttribute('maxlength')")  # a browser that lets it through anyway
    name.fill(too_long)
    page.get_by_role("button", name="Create project").click()
    expect(toast(page, "A project name has at most 200 characters: shorten it.")).to_be_visible()
    expect(page.get_by_text("Ensure this field")).to_have_count(0)

    page.goto(f"/p/{proj.pk}/settings")
    name = page.locator("input[name=name]")
    expect(name).to_have_attribute("maxlength", "200")
    name.evaluate("(el) => el.removeAttribute('maxlength')")
    name.fill(too_long)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("error-name")).to_have_text("A project name has at most 200 characters: shorten it.")


def test_a_class_rename_that_could_not_be_sent_keeps_the_typed_name_and_offers_retry(page, project, login_as):
    """Offline, the input jumped back to the old name (what was typed was lost) and no Retry was offered."""
    proj, owner = project
    saw = make_class(proj, "saw")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    detail = re.compile(rf".*/api/projects/{proj.pk}/classes/{saw.pk}/$")
    page.route(detail, lambda route: route.abort("internetdisconnected") if route.request.method == "PATCH" else route.continue_())
    field = page.get_by_label("name of saw", exact=True)
    field.fill("bow saw")
    # The failed save reloads the classes; the name was put back once that answered.
    with page.expect_response(lambda r: "/classes/?" in r.url and r.request.method == "GET"):
        field.press("Enter")
    failed = toast(page, "Couldn't save “saw”")
    expect(failed).to_be_visible()
    page.wait_for_timeout(200)
    expect(field).to_have_value("bow saw")
    page.unroute(detail)
    failed.get_by_role("button", name="Retry").click()
    until(page, lambda: LabelClass.objects.get(pk=saw.pk).name == "bow saw", what="the rename to be saved")
    expect(page.get_by_label("name of bow saw", exact=True)).to_have_value("bow saw")


def test_after_adding_an_instance_the_kind_goes_back_to_a_plain_class(page, project, login_as):
    """The Kind select stayed on "Instance of hammer": the next name typed became one more instance."""
    proj, owner = project
    hammer = make_class(proj, "hammer")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    kind = page.get_by_label("kind of the new class")
    page.get_by_test_id("class-hammer").get_by_role("button", name="+ instance").click()
    expect(kind).to_have_value(str(hammer.pk))
    page.fill("input[name=class-name]", "hammer-7")
    page.get_by_role("button", name="Add instance").click()
    expect(page.get_by_test_id("instances-of-hammer").get_by_test_id("class-hammer-7")).to_be_visible()
    expect(kind).to_have_value("")
    expect(page.get_by_role("button", name="Add class")).to_be_visible()


def noise_png(seed: int, side: int = 1800) -> bytes:
    """Noise does not compress: about 9.7 MB, so it takes two 8 MiB chunks."""
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def test_the_upload_total_says_how_much_was_cancelled(page, project, login_as, celery_worker):
    """After a Cancel it read "2 of 2 files · 1 KB of 1 KB": the cancelled file's megabytes were
    dropped from the total without a word."""
    proj, owner = project
    login_as(owner)
    held: list = []

    def chunk_route(route):
        if parse_qs(urlsplit(route.request.url).query)["offset"][0] != "0":
            held.append(route)  # the big file's second chunk hangs: it is mid-way
        else:
            route.continue_()

    def is_chunk(url: str) -> bool:
        return "/images/uploads/" in url and "offset=" in url

    page.route(is_chunk, chunk_route)
    page.set_viewport_size({"width": 375, "height": 740})  # the longer line still fits a phone
    page.goto(f"/p/{proj.pk}/upload")
    big = noise_png(9)
    page.set_input_files("input[name=files]", files=[
        {"name": "big-scan.png", "mimeType": "image/png", "buffer": big},
        {"name": "small.png", "mimeType": "image/png", "buffer": image_bytes(40, 30, (9, 99, 199))},
    ])
    until(page, lambda: held, timeout=30, what="the second chunk")
    page.get_by_role("button", name="Cancel big-scan.png").click()
    expect(page.get_by_test_id("upload-total-created")).to_have_text("1 added", timeout=30_000)
    total = page.get_by_test_id("upload-total")
    expect(total).to_contain_text("2 of 2 files")
    expect(total).to_contain_text(f"{len(big) / 2**20:.1f} MB cancelled")
    assert sideways(page) == 0
    for route in held:
        try:
            route.abort("connectionreset")
        except Exception:  # the browser already gave the cancelled request up
            pass


def test_an_import_is_named_by_its_file_and_time_not_a_number_counted_across_projects(page, project, login_as):
    """The first import of a project read "Import #4" (another project had #1 to #3)."""
    proj, owner = project
    other = make_project(owner, name="Other")
    for i in range(3):
        ImportJob.objects.create(project=other, created_by=owner, format="coco", upload_name=f"other-{i}.json", status="done")
    job = ImportJob.objects.create(project=proj, created_by=owner, format="coco", upload_name="tools.json", status="done",
                                   result={"annotations": 2, "images": 1})
    login_as(owner)
    page.goto(f"/p/{proj.pk}/import")
    row = page.get_by_test_id(f"import-{job.pk}")
    expect(row.locator("td").first).to_have_text("tools.json")
    assert str(job.pk) not in [t.strip() for t in row.locator("td").all_inner_texts()]
    row.click()
    heading = page.get_by_test_id("import-outcome").get_by_role("heading")
    expect(heading).to_contain_text("Import of tools.json")
    expect(heading).not_to_contain_text(f"#{job.pk}")
    expect(heading).to_contain_text(str(job.created_at.year))
