"""Project pages, round 4 of the black-box report: a deleted project is told to the members who
have it open (and a 404 on it is the same notice, not a toast under a stale header), images and
projects can be deleted from the UI, a long project name keeps the project bar on one row, the
sign-in lockout speaks in minutes, and a missing image's deep link says so once."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from django.db.models import F
from playwright.sync_api import expect

from backend.images.models import Image
from backend.projects import services as project_services
from backend.projects.models import Project

from .seed import add_member, add_prediction, make_class, make_image, make_project, make_user, rect_mask
from .steps import in_thread, toasts, until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-h1")
LONG_NAME = ("מחסן כלים ראשי " + "Склад инструментов " + "שורה ") * 6
LONG_NAME = LONG_NAME[:199]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def project():
    owner = make_user("oleg")
    return make_project(owner, name="Shop floor"), owner


# --- 5: a deleted project ---------------------------------------------------------------------

@pytest.mark.parametrize("where", ["images", "export"])
def test_members_with_the_project_open_are_told_who_deleted_it(page, project, login_as, where):
    """The page kept its name and tabs, the socket failed with 403 and the next click showed a
    toast "Couldn't load images: Project not found." under the old header. Export has no socket
    of its own: the layout's keeps every page told."""
    proj, owner = project
    rita = make_user("rita")
    add_member(proj, rita, "reviewer")
    make_image(proj, seed=1)
    login_as(rita)
    page.goto(f"/p/{proj.pk}/{where}")
    expect(page.get_by_test_id("project-name")).to_have_text("Shop floor")
    page.wait_for_timeout(600)  # the socket is up

    in_thread(project_services.delete_project, project_id=proj.pk, version=proj.version, by=owner)
    notice = page.get_by_test_id("project-error")
    expect(notice).to_contain_text("This project was deleted by oleg.")
    expect(page.get_by_test_id("project-bar")).to_have_count(0)
    page.wait_for_timeout(800)  # the socket's close (access.revoked) must not replace who did it
    expect(notice).to_contain_text("This project was deleted by oleg.")
    expect(toasts(page)).to_have_count(0)
    if where == "images":
        shot(page, "project-deleted-notice")
        page.set_viewport_size({"width": 1000, "height": 700})
        shot(page, "project-deleted-notice-1000")
    notice.get_by_role("link", name="All projects").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_a_404_on_the_project_shows_the_notice_not_a_toast_under_the_old_header(page, project, login_as):
    """No live event reached the page (the project went while its socket was down): the next
    request's 404 shows the project notice, whichever page made it."""
    proj, owner = project
    rita = make_user("rita")
    add_member(proj, rita, "reviewer")
    make_image(proj, seed=2)
    login_as(rita)
    page.goto(f"/p/{proj.pk}/images")
    expect(page.get_by_test_id("images-table").locator("tbody tr")).to_have_count(1)
    page.route("**/ws/**", lambda route: route.abort())  # no new socket; the open one stays quiet
    Project.objects.filter(pk=proj.pk).delete()  # gone without a word (no event)

    page.get_by_label("status filter").select_option("done")
    notice = page.get_by_test_id("project-error")
    expect(notice).to_contain_text("no longer have access to this project")
    expect(page.get_by_test_id("project-bar")).to_have_count(0)
    page.wait_for_timeout(600)
    expect(toasts(page)).to_have_count(0)


def test_a_404_met_by_another_tab_shows_the_notice_too(page, project, login_as):
    proj, owner = project
    rita = make_user("rita")
    add_member(proj, rita, "reviewer")
    login_as(rita)
    page.goto(f"/p/{proj.pk}/export")
    expect(page.get_by_test_id("project-name")).to_be_visible()
    # The Export page's own reads done first: one still on its way met the 404 itself (the notice
    # replaced the tabs before the click, a flake on a loaded machine).
    page.wait_for_load_state("networkidle")
    Project.objects.filter(pk=proj.pk).delete()
    page.get_by_role("link", name="Classes & gallery").click()
    expect(page.get_by_test_id("project-error")).to_contain_text("no longer have access to this project")
    page.wait_for_timeout(800)
    expect(toasts(page)).to_have_count(0)


# --- 6: deleting images and projects ----------------------------------------------------------

def test_admin_deletes_an_image_after_a_confirm_naming_it_and_its_objects(page, project, login_as):
    proj, owner = project
    hammer = make_class(proj, "hammer")
    doomed = make_image(proj, width=120, height=90, seed=3)
    for x in (5, 50):
        add_prediction(doomed, hammer, rect_mask(90, 120, x, 5, x + 30, 40))
    stale = make_image(proj, width=120, height=90, seed=4)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    rows = page.get_by_test_id("images-table").locator("tbody tr")
    expect(rows).to_have_count(2)

    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_test_id(f"delete-image-{doomed.pk}").click()
    until(page, lambda: asked, what="the confirm")
    assert doomed.original_name in asked[0] and "2 objects" in asked[0], asked
    assert Image.objects.filter(pk=doomed.pk).exists()  # cancelled: nothing happens
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/images$"))  # and the row's click did not open it

    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id(f"delete-image-{doomed.pk}").click()
    expect(rows).to_have_count(1)
    until(page, lambda: not Image.objects.filter(pk=doomed.pk).exists(), what="the image deleted")
    shot(page, "images-delete-1400")

    # Someone changed the other image since the list loaded: a 409, said in words, nothing deleted.
    Image.objects.filter(pk=stale.pk).update(version=F("version") + 1)
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id(f"delete-image-{stale.pk}").click()
    expect(page.get_by_test_id("toast").filter(has_text="changed since this list was loaded")).to_be_visible()
    assert Image.objects.filter(pk=stale.pk).exists()
    shot(page, "images-delete-conflict")
    page.set_viewport_size({"width": 1000, "height": 700})
    shot(page, "images-delete-1000")
    page.set_viewport_size({"width": 1400, "height": 900})
    # The list reloaded with the new version: deleting again works.
    page.wait_for_timeout(400)
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id(f"delete-image-{stale.pk}").click()
    until(page, lambda: not Image.objects.filter(pk=stale.pk).exists(), what="the image deleted")


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_who_the_api_refuses_sees_no_delete(page, project, login_as, role):
    proj, owner = project
    make_image(proj, seed=5)
    vera = make_user("vera")
    add_member(proj, vera, role)
    login_as(vera)
    page.goto(f"/p/{proj.pk}/images")
    expect(page.get_by_test_id("images-table").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
    page.goto(f"/p/{proj.pk}/settings")
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    expect(page.get_by_test_id("danger-zone")).to_have_count(0)


def test_admin_deletes_the_project_after_typing_its_name(page, project, login_as):
    proj, owner = project
    make_image(proj, seed=6)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/settings")
    zone = page.get_by_test_id("danger-zone")
    button = zone.get_by_role("button", name="Delete project")
    expect(button).to_be_disabled()
    box = zone.get_by_label("Type the project name to confirm")
    box.fill("Shop flo")
    expect(button).to_be_disabled()
    box.fill("shop floor")
    expect(button).to_be_disabled()
    box.fill("Shop floor")
    expect(button).to_be_enabled()
    shot(page, "settings-danger-zone-1400")
    page.set_viewport_size({"width": 1000, "height": 700})
    shot(page, "settings-danger-zone-1000")
    button.click()
    expect(page).to_have_url(re.compile(r"/$"))
    until(page, lambda: not Project.objects.filter(pk=proj.pk).exists(), what="the project deleted")
    expect(toasts(page).filter(has_text='Project "Shop floor" deleted.')).to_be_visible()
    expect(page.get_by_text("Shop floor", exact=True)).to_have_count(0)


def test_a_stale_project_version_is_explained_and_nothing_is_deleted(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/settings")
    zone = page.get_by_test_id("danger-zone")
    expect(zone).to_be_visible()  # the page holds the version it read
    Project.objects.filter(pk=proj.pk).update(version=F("version") + 1)
    zone.get_by_label("Type the project name to confirm").fill("Shop floor")
    zone.get_by_role("button", name="Delete project").click()
    expect(page.get_by_test_id("delete-project-error")).to_contain_text("Someone changed this project")
    assert Project.objects.filter(pk=proj.pk).exists()
    zone.get_by_role("button", name="Delete project").click()  # the page took the new version
    expect(page).to_have_url(re.compile(r"/$"))
    until(page, lambda: not Project.objects.filter(pk=proj.pk).exists(), what="the project deleted")


# --- 12: a long project name ------------------------------------------------------------------

@pytest.mark.parametrize("width,height", [(1400, 900), (1000, 700)])
def test_a_long_name_keeps_the_project_bar_on_one_row(page, login_as, width, height):
    owner = make_user("oleg")
    proj = make_project(owner, name=LONG_NAME)
    assert len(proj.name) == 199
    page.set_viewport_size({"width": width, "height": height})
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    name = page.get_by_test_id("project-name")
    expect(name).to_have_attribute("title", LONG_NAME)
    bar = page.get_by_test_id("project-bar")
    metrics = bar.evaluate("""(bar) => {
        const name = bar.querySelector('.project-name');
        const tabs = [...bar.querySelectorAll('.tab')];
        const line = parseFloat(getComputedStyle(name).lineHeight) || 20;
        return {
            bar: bar.getBoundingClientRect().height,
            nameH: name.getBoundingClientRect().height, line,
            cut: name.scrollWidth > name.clientWidth,
            hidden: bar.scrollWidth - bar.clientWidth,
            tabs: tabs.map((t) => [t.textContent, t.getClientRects().length, t.getBoundingClientRect().height,
                                   t.getBoundingClientRect().top]),
        };
    }""")
    shot(page, f"long-name-{width}")
    assert metrics["bar"] < 50, metrics
    assert metrics["nameH"] < 2 * metrics["line"], metrics
    assert metrics["cut"], metrics
    assert metrics["hidden"] <= 1, metrics  # every tab in view, none scrolled off
    tops = {round(t[3]) for t in metrics["tabs"]}
    assert len(tops) == 1, metrics  # every tab on the one row
    for label, rects, h, _ in metrics["tabs"]:
        assert rects == 1 and h < 45, (label, metrics)


# --- 13: the sign-in lockout ------------------------------------------------------------------

def test_lockout_message_says_minutes_and_no_advice_the_product_cannot_honour(page, live_url):
    username = f"lena-{uuid.uuid4().hex[:8]}"
    make_user(username, password="right-pass-123")
    for i in range(10):
        answer = page.request.post(f"{live_url}/api/auth/login/", data={"username": username, "password": f"guess-{i}"})
        assert answer.status == 400, answer.text()
    page.goto("/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "right-pass-123")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Too many failed sign-ins: this account is locked. Try again in 15 minutes.")
    text = alert.text_content()
    assert "Expected available" not in text and "admin" not in text.lower() and "seconds" not in text
    shot(page, "login-lockout")


# --- 18: a missing image's deep link ----------------------------------------------------------

def test_a_missing_image_deep_link_says_so_once(page, project, login_as):
    proj, owner = project
    login_as(owner)
    page.goto(f"/p/{proj.pk}/review/99999")
    expect(page.get_by_text("This image doesn't exist")).to_be_visible()
    page.wait_for_timeout(1000)
    expect(toasts(page)).to_have_count(0)


def test_a_long_unbroken_project_name_stays_inside_its_card(page, login_as):
    """"Project_" + 150 × "L" widened the Projects page to 1960 px at 1000 px."""
    owner = make_user("lena")
    make_project(owner, name="Project_" + "L" * 150)
    page.set_viewport_size({"width": 1000, "height": 700})
    login_as(owner)
    page.goto("/")
    title = page.locator(".cards .card-title").first
    expect(title).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1000
    assert title.get_attribute("title") == "Project_" + "L" * 150
