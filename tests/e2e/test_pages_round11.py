"""Round 11's page defects: the Export list scrolls in its card at narrow widths (its Download
buttons ran off-screen and the page scrolled sideways), and a refused upload reads the same
whether the file was empty or corrupt (a large red paragraph against a small bullet)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backend.exchange.models import ExportJob
from tests.backend.factories import image_bytes

from .seed import make_project, make_user
from .steps import sideways

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("erik")
    return make_project(owner, name="Hand tools with a rather long project name"), owner


def test_past_exports_scroll_in_their_card_on_a_narrow_window(page, project, login_as):
    proj, owner = project
    for fmt in ("coco", "yolo", "labelstudio"):
        ExportJob.objects.create(project=proj, created_by=owner, format=fmt, status="done", result_file=f"exports/{fmt}.zip",
                                 result_size=123456, options={"include_images": True, "include_pending": True},
                                 result={"images": 6, "annotations": 22, "skipped_unclassified": 0})
    login_as(owner)
    for width in (800, 375):
        page.set_viewport_size({"width": width, "height": 740})
        page.goto(f"/p/{proj.pk}/export")
        download = page.get_by_test_id("export-download").first
        expect(download).to_be_attached()
        assert sideways(page) == 0, f"{width} px: the Export page scrolls sideways by {sideways(page)} px"
        card = page.get_by_test_id("export-list").bounding_box()
        assert card["x"] + card["width"] <= width, f"{width} px: the card ends at {card['x'] + card['width']}"
        download.scroll_into_view_if_needed()  # the table scrolls inside its card to it
        b = download.bounding_box()
        assert 0 <= b["x"] and b["x"] + b["width"] <= width, f"{width} px: Download at {b}"


def test_an_empty_and_a_corrupt_file_are_refused_in_one_style(page, project, login_as, celery_worker):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[
        {"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": b""},
        {"name": "broken.png", "mimeType": "image/png", "buffer": b"this is not an image at all"},
        {"name": "good.png", "mimeType": "image/png", "buffer": image_bytes(40, 30, (10, 200, 10))},
    ])
    empty = page.get_by_test_id("upload-item").filter(has_text="empty.jpg").locator(".error")
    broken = page.get_by_test_id("upload-item").filter(has_text="broken.png").locator(".errors li")
    expect(empty).to_have_text("empty.jpg: The file is empty (0 bytes); there is nothing to upload.")
    expect(broken).to_contain_text("broken.png", timeout=30_000)
    style = "e => { const s = getComputedStyle(e); return [s.fontSize, s.color, s.display]; }"
    assert empty.evaluate(style) == broken.evaluate(style)
