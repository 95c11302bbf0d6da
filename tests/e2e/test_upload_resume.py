"""Chunked uploads in a real browser: a chunk's connection is cut and the upload resumes from the
server's offset; duplicates and bad files are named; the list shows thumbnails."""
from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import expect

from backend.images.models import Image
from backend.images.upload_sessions import CHUNK_BYTES
from tests.backend.factories import image_bytes

from .seed import make_project, make_user
from .steps import until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-uploads")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def big_png(seed: int, side: int = 1800) -> bytes:
    """Noise does not compress: about 9.7 MB, so it takes two 8 MiB chunks."""
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


@pytest.fixture
def project():
    owner = make_user("uma")
    return make_project(owner, name="Big set"), owner


def test_a_cut_connection_resumes_where_it_stopped(page, project, login_as, celery_worker):
    proj, owner = project
    login_as(owner)
    big = big_png(1)
    assert len(big) > CHUNK_BYTES
    puts: list[str] = []
    finishing: list[tuple[str, str]] = []
    cut: list[str] = []

    def chunk_route(route):
        url = route.request.url
        query = parse_qs(urlsplit(url).query)
        puts.append(query["offset"][0])
        finishing.append((query["offset"][0], query.get("finish", ["0"])[0]))
        if not cut and query["offset"][0] != "0":
            cut.append(url)  # the second chunk's first try dies mid-flight
            route.abort("connectionreset")
        else:
            route.continue_()

    def is_chunk(url: str) -> bool:
        return "/images/uploads/" in url and "offset=" in url

    page.route(is_chunk, chunk_route)
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[
        {"name": "big-scan.png", "mimeType": "image/png", "buffer": big},
        {"name": "small.png", "mimeType": "image/png", "buffer": image_bytes(40, 30, (9, 99, 199))},
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"},
    ])
    expect(page.get_by_test_id("upload-total")).to_be_visible()
    shot(page, "upload-in-progress")
    expect(page.get_by_test_id("upload-total")).to_contain_text("3 of 3 files", timeout=60_000)
    expect(page.get_by_test_id("upload-total-created")).to_have_text("2 added")
    expect(page.get_by_test_id("upload-error-count")).to_have_text(", 1 refused")
    errors = page.get_by_test_id("upload-errors")
    expect(errors).to_contain_text("notes.png")
    expect(errors).to_contain_text("not an image")
    shot(page, "upload-done-with-error")

    assert cut, "the test cut one chunk's connection"
    big_offsets = [o for o in puts if o != "0"]
    assert big_offsets == [str(CHUNK_BYTES), str(CHUNK_BYTES)], f"the cut chunk is retried from its offset: {puts}"
    assert puts.count("0") == 3, f"no file started over: {puts}"
    # Each file's last chunk finishes it (no separate finish request): the one-chunk files at 0,
    # the big one at its second chunk; its first chunk does not.
    assert sorted(finishing) == sorted([("0", "1"), ("0", "1"), ("0", "0"), (str(CHUNK_BYTES), "1"),
                                        (str(CHUNK_BYTES), "1")]), finishing
    stored = Image.objects.get(project=proj, original_name="big-scan.png")
    import hashlib

    assert stored.sha256 == hashlib.sha256(big).hexdigest() and stored.thumbnail

    # The same image again is a duplicate, named, and nothing is stored twice.
    page.unroute(is_chunk)
    page.reload()
    page.set_input_files("input[name=files]", files=[
        {"name": "small-again.png", "mimeType": "image/png", "buffer": image_bytes(40, 30, (9, 99, 199))},
    ])
    item = page.get_by_test_id("upload-item")
    expect(item.get_by_test_id("upload-duplicate")).to_contain_text("1 duplicate skipped", timeout=30_000)
    expect(item.get_by_test_id("upload-state")).to_have_text("already in the project")
    expect(item).to_contain_text("small-again.png")
    assert Image.objects.filter(project=proj).count() == 2
    shot(page, "upload-duplicate")

    # The list shows thumbnails, served to this member.
    page.goto(f"/p/{proj.pk}/images")
    thumbs = page.get_by_test_id("thumb")
    expect(thumbs).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=thumb]')].every(i => i.complete && i.naturalWidth > 0)"
    )
    widths = thumbs.evaluate_all("els => els.map(e => e.naturalWidth)")
    assert max(widths) <= 256
    shot(page, "images-with-thumbnails")

    # With nothing left to review, the queue shows the last reviewed images as thumbnails.
    Image.objects.filter(project=proj).update(status="done")
    page.goto(f"/p/{proj.pk}/review")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    recent = page.get_by_test_id("queue-recent").get_by_test_id("thumb")
    expect(recent).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=queue-recent] img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    shot(page, "queue-recent-thumbnails")


def test_signing_out_mid_upload_asks_stops_it_and_the_same_file_resumes_after_signing_in(
        page, project, login_as, celery_worker, tmp_path):
    """A sign-out mid-upload forgot the saved session (the file started over after signing in), and
    the files still queued went on uploading under whoever signed in next on the tab."""
    proj, owner = project
    login_as(owner)
    big = tmp_path / "big-scan.png"  # a file on disk: picked again, it has the same date (part of its resume key)
    big.write_bytes(big_png(2))
    held: list = []
    offsets: list[str] = []

    def chunk_route(route):
        offset = parse_qs(urlsplit(route.request.url).query)["offset"][0]
        offsets.append(offset)
        if offset != "0" and not held:
            held.append(route)  # the second chunk hangs: the upload is mid-way at the sign-out
        else:
            route.continue_()

    def is_chunk(url: str) -> bool:
        return "/images/uploads/" in url and "offset=" in url

    page.route(is_chunk, chunk_route)
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[big])
    until(page, lambda: held, timeout=30, what=f"the second chunk (sent: {offsets})")

    questions: list[str] = []

    def answer(dialog):
        questions.append(dialog.message)
        dialog.dismiss() if len(questions) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_timeout(300)
    assert "1 upload is still running" in questions[0], questions
    expect(page.get_by_test_id("whoami")).to_be_visible()  # dismissed: still signed in, still uploading
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    assert len(questions) == 2
    page.unroute(is_chunk)
    try:
        held[0].abort("connectionreset")
    except Exception:  # the browser already gave the stopped request up
        pass

    login_as(owner)
    page.goto(f"/p/{proj.pk}/upload")
    expect(page.get_by_test_id("upload-item")).to_have_count(0)  # the signed-out list is gone
    page.set_input_files("input[name=files]", files=[big])
    item = page.get_by_test_id("upload-item")
    expect(item.get_by_test_id("upload-resumed")).to_contain_text("were already on the server", timeout=60_000)
    expect(page.get_by_test_id("upload-total-created")).to_have_text("1 added", timeout=60_000)
    assert offsets.count("0") == 1, f"the first chunk was sent once: {offsets}"
    assert Image.objects.filter(project=proj, original_name="big-scan.png").count() == 1
