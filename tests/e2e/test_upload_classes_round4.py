"""Round 4 of a new user's findings on the Classes & gallery and Upload pages: long class names
widened the page, classes could not be deleted, "Add exemplars" was no button, uploads could not
be cancelled nor folders uploaded, and an empty file's refusal named an API field."""
from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import expect

from backend.gallery.models import GalleryImage
from backend.images.models import Image, UploadSession
from backend.projects.models import LabelClass
from tests.backend.factories import image_bytes

from .seed import add_prediction, make_class, make_image, make_project, make_user, rect_mask
from .steps import toast, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-h2")
LONG = "отвёртка" + "-очень-длинная" * 8


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def side_scroll(page) -> tuple[int, int]:
    return page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def noise_png(seed: int, side: int = 1800) -> bytes:
    """About 9.7 MB: two 8 MiB chunks."""
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def is_chunk(url: str) -> bool:
    return "/images/uploads/" in url and "offset=" in url


@pytest.fixture
def project():
    owner = make_user("uma")
    return make_project(owner, name="Round 4"), owner


# --------------------------------------------------------------------------- classes page


def test_a_long_class_name_does_not_widen_the_classes_page(page, project, login_as):
    proj, owner = project
    screwdriver = make_class(proj, LONG)
    make_class(proj, "hammer")
    make_class(proj, "отвёртка-1234" + "-экземпляр" * 8, kind="instance", parent=screwdriver)
    login_as(owner)
    for width, height in ((1400, 900), (1000, 700)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"/p/{proj.pk}/classes")
        expect(page.get_by_role("heading", name="Upload an ImageFolder zip")).to_be_visible()
        expect(page.get_by_label("kind of the new class")).to_contain_text("Instance of отвёртка")
        scroll, client = side_scroll(page)
        shot(page, f"classes-long-name-{width}")
        assert scroll <= client, f"the page scrolls sideways at {width} px: {scroll} > {client}"
        # The zip card is on screen, not pushed off to the right.
        box = page.get_by_role("heading", name="Upload an ImageFolder zip").bounding_box()
        assert box and box["x"] + box["width"] <= client, box
        # The full name is still there to read (title), not lost to the cut.
        option = page.get_by_label("kind of the new class").locator("option", has_text="Instance of отвёртка")
        assert option.get_attribute("title") == f"Instance of {LONG}"


def test_an_admin_deletes_an_unused_class_and_is_told_why_a_used_one_stays(page, project, login_as):
    proj, owner = project
    spare = make_class(proj, "spare")
    hammer = make_class(proj, "hammer")
    image = make_image(proj)
    add_prediction(image, hammer, rect_mask(48, 64, 2, 2, 20, 20))
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    asked: list[str] = []
    answers = iter([False, True, True])
    page.on("dialog", lambda d: (asked.append(d.message), d.accept() if next(answers) else d.dismiss()))

    delete_spare = page.get_by_test_id("class-spare").get_by_role("button", name="Delete spare")
    delete_spare.click()  # dismissed: nothing happens
    page.wait_for_timeout(300)
    assert LabelClass.objects.filter(pk=spare.pk).exists()
    assert "Delete the class “spare”?" in asked[0] and "Objects are never changed" in asked[0], asked
    delete_spare.click()
    expect(page.get_by_test_id("class-spare")).to_have_count(0)
    expect(toast(page, "Deleted the class “spare”.")).to_be_visible()
    assert not LabelClass.objects.filter(pk=spare.pk).exists()

    page.get_by_test_id("class-hammer").get_by_role("button", name="Delete hammer").click()
    refusal = toast(page, "Couldn't delete “hammer”")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("1 object labelled with it")
    expect(refusal).to_contain_text("give those objects another class")
    shot(page, "classes-delete-refused")
    assert LabelClass.objects.filter(pk=hammer.pk).exists()
    expect(page.get_by_test_id("class-hammer")).to_be_visible()


def test_add_exemplars_is_a_button_the_keyboard_reaches(page, project, login_as):
    proj, owner = project
    make_class(proj, "hammer")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    card = page.get_by_test_id("class-hammer")
    button = card.get_by_role("button", name="Add exemplars")
    expect(button).to_have_count(1)
    # Tab from the card's kind select goes through to it (the label it was is skipped by Tab).
    card.get_by_label("kind of hammer").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.textContent") == "Add exemplars":
            break
    assert page.evaluate("() => document.activeElement?.textContent") == "Add exemplars"
    # It sits on the card's row like the buttons beside it (same middle, same height).
    middle = lambda b: (round(b["y"] + b["height"] / 2), round(b["height"]))  # noqa: E731
    assert middle(button.bounding_box()) == middle(card.get_by_role("button", name="Deactivate").bounding_box())
    # Enter on it opens the file picker (pressed on the locator: a live reload of the classes may
    # re-render the card between the Tab and the key).
    with page.expect_file_chooser() as chooser:
        button.press("Enter")
    chooser.value.set_files(files=[{"name": "h1.png", "mimeType": "image/png", "buffer": image_bytes(40, 40, (10, 20, 200))}])
    expect(card).to_contain_text("1 exemplar", timeout=15_000)
    assert GalleryImage.objects.filter(project=proj, label_class__name="hammer").count() == 1
    # Said by the class's name, not under the ImageFolder zip card (round 6)
    expect(page.get_by_test_id("toast").filter(has_text="1 exemplar added to “hammer”")).to_be_visible()
    expect(page.locator(".report-names")).to_have_count(0)


# --------------------------------------------------------------------------- upload page


def test_a_running_upload_is_cancelled_and_the_server_drops_it(page, project, login_as, celery_worker):
    proj, owner = project
    login_as(owner)
    held: list = []
    deletes: list[str] = []

    def chunk_route(route):
        if parse_qs(urlsplit(route.request.url).query)["offset"][0] != "0":
            held.append(route)  # the second chunk hangs: the file is mid-way
        else:
            route.continue_()

    page.route(is_chunk, chunk_route)
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[
        {"name": "big-scan.png", "mimeType": "image/png", "buffer": noise_png(3)},
        {"name": "small.png", "mimeType": "image/png", "buffer": image_bytes(40, 30, (9, 99, 199))},
    ])
    until(page, lambda: held, timeout=30, what="the second chunk")
    assert UploadSession.objects.filter(project=proj, file_name="big-scan.png", status="receiving").count() == 1
    big = page.get_by_test_id("upload-item").filter(has_text="big-scan.png")
    shot(page, "upload-cancel-before")
    big.get_by_role("button", name="Cancel big-scan.png").click()
    expect(big.get_by_test_id("upload-state")).to_have_text("cancelled")
    expect(big.locator(".error")).to_have_count(0)  # cancelled, not failed
    expect(page.get_by_test_id("upload-cancelled-count")).to_have_text(", 1 cancelled")
    expect(page.get_by_test_id("upload-total-created")).to_have_text("1 added", timeout=30_000)
    expect(page.get_by_test_id("upload-total")).to_contain_text("2 of 2 files")
    expect(page.get_by_test_id("upload-error-count")).to_have_count(0)
    until(page, lambda: deletes, timeout=10, what="the DELETE of the session")
    until(page, lambda: not UploadSession.objects.filter(project=proj, file_name="big-scan.png").exists(),
          timeout=10, what="the server to drop the cancelled session")
    assert not Image.objects.filter(project=proj, original_name="big-scan.png").exists()
    shot(page, "upload-cancelled")
    for route in held:
        try:
            route.abort("connectionreset")
        except Exception:
            pass


def test_cancel_all_stops_every_file_still_sending(page, project, login_as):
    proj, owner = project
    login_as(owner)
    held: list = []
    page.route(is_chunk, lambda route: held.append(route))  # nothing gets through
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[
        {"name": f"p{i}.png", "mimeType": "image/png", "buffer": image_bytes(30, 30, (i * 40, 10, 10))} for i in range(4)
    ])
    until(page, lambda: len(held) >= 3, timeout=30, what="three chunks in flight")
    page.get_by_test_id("upload-cancel-all").click()
    states = page.get_by_test_id("upload-state")
    expect(states).to_have_text(["cancelled"] * 4)
    expect(page.get_by_test_id("upload-cancelled-count")).to_have_text(", 4 cancelled")
    expect(page.get_by_test_id("upload-cancel-all")).to_have_count(0)
    until(page, lambda: not UploadSession.objects.filter(project=proj).exists(), timeout=10,
          what="the server to drop the sessions")
    page.wait_for_timeout(500)
    assert len(held) == 3, "the fourth file never started"
    for route in held:
        try:
            route.abort("connectionreset")
        except Exception:
            pass


def test_a_folder_is_uploaded_with_its_sub_folders_and_other_files_are_counted(page, project, login_as, celery_worker, tmp_path):
    proj, owner = project
    login_as(owner)
    root = tmp_path / "field"
    (root / "day2").mkdir(parents=True)
    (root / "a.png").write_bytes(image_bytes(30, 20, (200, 0, 0)))
    (root / "day2" / "b.jpg").write_bytes(image_bytes(30, 20, (0, 200, 0), fmt="JPEG"))
    (root / "notes.txt").write_text("not an image")
    (root / "day2" / "sheet.csv").write_text("a,b")
    page.goto(f"/p/{proj.pk}/upload")
    expect(page.get_by_role("button", name="Choose a folder")).to_be_visible()
    page.set_input_files("input[name=folder]", str(root))
    expect(page.get_by_test_id("upload-total")).to_contain_text("2 of 2 files", timeout=30_000)
    expect(page.get_by_test_id("upload-total-created")).to_have_text("2 added")
    skipped = page.get_by_test_id("upload-skipped")
    expect(skipped).to_contain_text("Skipped 2 files that are not an image")
    expect(skipped).to_contain_text("notes.txt")
    shot(page, "upload-folder")
    names = sorted(Image.objects.filter(project=proj).values_list("original_name", flat=True))
    assert names == ["field/a.png", "field/day2/b.jpg"], names


def test_an_empty_file_is_refused_in_plain_words(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/upload")
    page.set_input_files("input[name=files]", files=[{"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": b""}])
    item = page.get_by_test_id("upload-item")
    expect(item.locator(".error")).to_have_text("empty.jpg: The file is empty (0 bytes); there is nothing to upload.")
    expect(item).not_to_contain_text("size_bytes")


DROP_FOLDER = """async ([pngA, pngB]) => {
  // A folder as Chromium hands a dropped one to the page: entries read in batches, recursively.
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const file = (path, data, type) => ({ isFile: true, isDirectory: false, name: path.split("/").pop(), fullPath: "/" + path,
    file: (ok) => ok(new File([data], path.split("/").pop(), { type })) });
  const dir = (path, entries) => ({ isFile: false, isDirectory: true, name: path.split("/").pop(), fullPath: "/" + path,
    createReader: () => { let at = 0; return { readEntries: (ok) => { const part = entries.slice(at, at + 1); at += 1; setTimeout(() => ok(part), 0); } }; } });
  const tree = dir("shots", [file("shots/a.png", bytes(pngA), "image/png"), file("shots/readme.md", "hi", "text/markdown"),
    dir("shots/sub", [file("shots/sub/b.png", bytes(pngB), "image/png")])]);
  const event = new Event("drop", { bubbles: true, cancelable: true });
  // dataTransfer.files of a dropped folder is one entry the page cannot read as an image.
  Object.defineProperty(event, "dataTransfer", { value: {
    files: [new File([], "shots")], types: ["Files"],
    items: [{ kind: "file", webkitGetAsEntry: () => tree, getAsFile: () => new File([], "shots") }],
  } });
  document.querySelector(".dropzone").dispatchEvent(event);
}"""


def test_a_dropped_folder_is_expanded_to_its_images(page, project, login_as, celery_worker):
    import base64

    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/upload")
    expect(page.locator(".dropzone")).to_be_visible()
    pngs = [base64.b64encode(image_bytes(20, 20, color)).decode() for color in ((1, 2, 3), (200, 100, 50))]
    page.evaluate(DROP_FOLDER, pngs)
    expect(page.get_by_test_id("upload-total")).to_contain_text("2 of 2 files", timeout=30_000)
    expect(page.get_by_test_id("upload-total-created")).to_have_text("2 added")
    expect(page.get_by_test_id("upload-skipped")).to_contain_text("Skipped 1 file that is not an image")
    expect(page.get_by_test_id("upload-skipped")).to_contain_text("shots/readme.md")
    names = sorted(Image.objects.filter(project=proj).values_list("original_name", flat=True))
    assert names == ["shots/a.png", "shots/sub/b.png"], names
