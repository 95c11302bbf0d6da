"""Project pages, round 3 of the black-box report: uploads that resume after a reload and outlive
the Upload page, one request per double-click, the viewer's tabs, no stray toast on a foreign
project, a long username in the one-time-password box, a stale set-password error, and the
class rows' alignment."""
from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import expect

from backend.core.accounts import create_user_with_one_time_password
from backend.images.models import Image, UploadSession
from backend.images.upload_sessions import CHUNK_BYTES
from backend.jobs.models import PrelabelJob
from backend.projects.models import LabelClass, Project

from .seed import add_member, make_class, make_image, make_project, make_staff, make_user
from .steps import toasts, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-pages-round3")
UPLOAD_KEYS = "() => Object.keys(localStorage).filter((k) => k.startsWith('razmetka.upload:'))"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def noise_png(path: Path, side: int) -> Path:
    """Noise does not compress (side 2600: about 20 MB, three 8 MiB chunks). A real file, so the
    browser gives it the same lastModified each time it is picked."""
    pixels = np.random.default_rng(3).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=1)
    path.write_bytes(out.getvalue())
    return path


def throttle_uploads(page, bytes_per_s: int) -> None:
    """DevTools' network throttling (-1: none). Not page.route: Chromium drops the body of a
    routed request whose body is a file on disk."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_s})


@pytest.fixture
def project():
    owner = make_user("oleg")
    return make_project(owner, name="Shop floor"), owner


# --------------------------------------------------------------------------- uploads (#2)


def test_an_upload_outlives_the_page_warns_before_a_reload_and_resumes_after_it(page, project, login_as, celery_worker, tmp_path):
    proj, owner = project
    big = noise_png(tmp_path / "big-scan.png", side=2600)
    size = big.stat().st_size
    assert size > 2 * CHUNK_BYTES
    login_as(owner)
    puts: list[str] = []
    creates: list[str] = []

    def seen(request) -> None:
        if "/images/uploads/" not in request.url:
            return
        if request.method == "PUT":
            puts.append(parse_qs(urlsplit(request.url).query)["offset"][0])
        elif request.method == "POST" and request.url.endswith("/images/uploads/"):
            creates.append(request.url)

    page.on("request", seen)
    throttle_uploads(page, 1536 * 1024)  # a slow link: each 8 MiB chunk takes about 5 s
    page.goto(f"/p/{proj.pk}/upload")
    page.get_by_role("heading", name="Upload images").click()  # a user gesture: browsers ask on unload only after one
    page.set_input_files("input[name=files]", str(big))
    expect(page.get_by_test_id("uploads-running")).to_have_text("1")

    # Another page of the app and back: the upload still runs and is still listed.
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_test_id("status-counts")).to_be_visible()
    expect(page.get_by_test_id("uploads-running")).to_have_text("1")
    page.get_by_role("link", name="Upload").click()
    item = page.get_by_test_id("upload-item")
    expect(item).to_contain_text("big-scan.png")
    expect(item).to_have_attribute("data-phase", "sending")
    shot(page, "upload-still-running-after-coming-back")
    assert page.evaluate(UPLOAD_KEYS), "the open session is remembered"

    # Part of the file is in; reloading asks first, and stops the upload.
    wait_for(lambda: UploadSession.objects.filter(project=proj, received_bytes__gte=CHUNK_BYTES).exists(), timeout=30, what="first chunk stored")
    dialogs: list[str] = []

    def answer(d):
        dialogs.append(d.type)
        d.accept()

    page.on("dialog", answer)
    page.reload()
    expect(page.get_by_role("heading", name="Upload images")).to_be_visible()
    assert dialogs == ["beforeunload"], dialogs
    expect(page.get_by_test_id("upload-item")).to_have_count(0)
    session = UploadSession.objects.get(project=proj)
    assert session.status == "receiving" and 0 < session.received_bytes < size

    # The same file picked again goes on from the server's offset, in the same session.
    throttle_uploads(page, -1)
    puts.clear()
    creates.clear()
    page.set_input_files("input[name=files]", str(big))
    expect(page.get_by_test_id("upload-total")).to_contain_text("1 of 1 files", timeout=60_000)
    expect(page.get_by_test_id("upload-total-created")).to_have_text("1 added")
    expect(page.get_by_test_id("upload-resumed")).to_contain_text("MB were already on the server")
    shot(page, "upload-resumed-after-reload")
    assert "0" not in puts and puts[0] == str(session.received_bytes), f"only the missing part is sent: {puts}"
    assert creates == [], "no new upload session is opened"
    assert UploadSession.objects.filter(project=proj).count() == 1
    assert Image.objects.filter(project=proj, original_name="big-scan.png").count() == 1
    assert page.evaluate(UPLOAD_KEYS) == [], "a finished upload is forgotten"
    expect(page.get_by_test_id("uploads-running")).to_have_count(0)


# --------------------------------------------------------------------------- double clicks (#4)


def test_a_double_click_creates_one_project_one_class_and_starts_one_job(page, project, login_as, celery_worker):
    proj, owner = project
    make_image(proj, seed=4)
    login_as(owner)
    made: dict[str, int] = {}
    page.goto("/")
    page.fill("input[name=project-name]", "Twice clicked")
    page.get_by_role("button", name="Create project").dblclick()
    expect(page.get_by_role("heading", name="Pre-annotate")).to_be_visible()
    page.wait_for_timeout(500)
    made["projects"] = Project.objects.filter(name="Twice clicked").count()

    page.goto(f"/p/{proj.pk}/classes")
    page.fill("input[name=class-name]", "hammer")
    page.get_by_role("button", name="Add class").dblclick()
    expect(page.get_by_test_id("class-hammer")).to_be_visible()
    page.wait_for_timeout(500)
    made["classes"] = LabelClass.objects.filter(project=proj, name="hammer").count()
    made["toasts"] = toasts(page).count()  # e.g. "already exists" from a second request

    page.goto(f"/p/{proj.pk}")
    form = page.get_by_test_id("prelabel-form")
    expect(form.get_by_role("button", name="Run pre-annotation")).to_be_enabled()
    form.get_by_role("button", name="Run pre-annotation").dblclick()
    wait_for(lambda: PrelabelJob.objects.filter(project=proj).exists(), what="job row")
    page.wait_for_timeout(800)
    made["jobs"] = PrelabelJob.objects.filter(project=proj).count()
    assert made == {"projects": 1, "classes": 1, "toasts": 0, "jobs": 1}


# --------------------------------------------------------------------------- viewer tabs (#14), foreign project (#15)


def test_a_viewer_has_no_upload_tab_and_a_foreign_project_shows_only_the_page_message(page, project, login_as):
    proj, owner = project
    vera = make_user("vera")
    add_member(proj, vera, "viewer")
    foreign = make_project(owner, name="Not yours")
    login_as(vera)
    seen: dict[str, object] = {}
    page.goto(f"/p/{proj.pk}")
    tabs = page.locator("nav.tabs")
    expect(tabs.get_by_role("link", name="Images")).to_be_visible()
    seen["upload tab"] = tabs.get_by_role("link", name="Upload").count()
    seen["import tab"] = tabs.get_by_role("link", name="Import").count()
    page.goto(f"/p/{proj.pk}/upload")
    expect(page.get_by_role("link", name="Images")).to_be_visible()
    seen["upload page refuses"] = page.get_by_test_id("forbidden").filter(has_text="can't upload images").count()

    for path in (f"/p/{foreign.pk}", f"/p/{foreign.pk}/review/1", "/p/999999/images"):
        page.goto(path)
        expect(page.get_by_test_id("project-error")).to_contain_text("you are not a member")
        page.wait_for_timeout(700)  # the class list's answer has arrived by now
        seen[f"toasts on {path}"] = [t.inner_text() for t in toasts(page).all()]
    shot(page, "foreign-project")
    assert seen == {
        "upload tab": 0, "import tab": 0, "upload page refuses": 1,
        f"toasts on /p/{foreign.pk}": [], f"toasts on /p/{foreign.pk}/review/1": [], "toasts on /p/999999/images": [],
    }


# --------------------------------------------------------------------------- long username (#9), set password (#10)


def test_a_long_username_wraps_in_the_one_time_box(page, login_as):
    root = make_staff("root")
    proj = make_project(root, name="Staffed")
    login_as(root)
    page.goto(f"/p/{proj.pk}/members")
    long_name = "Ёжик_длинное_имя_пользователя_очень_длинное_имя_1234567890"
    page.fill("input[name=new-username]", long_name)
    page.get_by_role("button", name="Create user").click()
    box = page.get_by_test_id("one-time-password")
    expect(box).to_contain_text(long_name)
    shot(page, "one-time-long-name")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1400, f"the page is {width} px wide"
    card, name = page.get_by_test_id("new-user").bounding_box(), box.locator("b").bounding_box()
    assert name["x"] + name["width"] <= card["x"] + card["width"], (name, card)


def test_the_set_password_form_drops_the_servers_verdict_once_the_fields_change(page):
    root = make_staff("root")
    _, password = create_user_with_one_time_password(by=root, username="pavel")
    page.goto("/")
    page.fill("input[name=username]", "pavel")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    form = page.get_by_test_id("set-password")
    page.fill("input[name=current_password]", password)
    page.fill("input[name=new_password]", "12345678")
    page.fill("input[name=new_password_again]", "12345678")
    page.get_by_role("button", name="Set password").click()
    server_error = form.get_by_role("alert")
    expect(server_error).to_contain_text("numeric")
    page.fill("input[name=new_password]", "Abcdefgh-1")
    page.fill("input[name=new_password_again]", "Abcdefgh-2")
    expect(form).to_contain_text("The two new passwords differ.")
    expect(server_error).to_have_count(0)
    expect(form).not_to_contain_text("numeric")


# --------------------------------------------------------------------------- class rows (#17)


def test_class_rows_line_up(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer", color="#e6194b")
    make_class(proj, "hammer-1", color="#3cb44b", kind="instance", parent=hammer)
    make_class(proj, "wrench", color="#4363d8")
    login_as(owner)
    page.goto(f"/p/{proj.pk}/classes")
    card = page.get_by_test_id("class-hammer")
    expect(card).to_be_visible()
    shot(page, "class-rows")
    middle = lambda loc: (lambda b: b["y"] + b["height"] / 2)(loc.bounding_box())  # noqa: E731
    add = card.get_by_role("button", name="Add exemplars")
    offsets = {
        name: (round(middle(add) - middle(button), 1), round(add.bounding_box()["height"] - button.bounding_box()["height"], 1))
        for name, button in (("+ instance", card.get_by_role("button", name="+ instance")), ("Deactivate", card.get_by_role("button", name="Deactivate")))
    }
    widths = {n: round(page.get_by_label(f"kind of {n}", exact=True).bounding_box()["width"]) for n in ("hammer", "hammer-1", "wrench")}
    # "Add exemplars" sits on its row (same middle, same height); every kind select is as wide as the others.
    on_row = all(abs(dy) <= 1 and abs(dh) <= 1 for dy, dh in offsets.values())
    assert (on_row, len(set(widths.values()))) == (True, 1), (offsets, widths)
