"""Project settings in a real browser: the engine select (from GET /api/engines/) and
"Learn from reviews", saved with the project's version; a new job freezes the chosen engine."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from backend.jobs.services import start_job
from backend.projects.models import Project

from .seed import make_image, make_project, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-engines")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_engine_and_learn_from_reviews_are_saved_and_frozen_into_jobs(page, login_as, settings):
    settings.QUEUE_GPU = "nobody-reads-the-engine-test-queue"  # the job is only started, never run
    owner = make_user("erik")
    proj = make_project(owner, name="Engines")
    make_image(proj)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/settings")
    select = page.locator("select[name=engine]")
    expect(select).to_have_value("gdino-sam2")
    # The options come from the registry through the API: titles, not just names.
    expect(select.locator("option")).to_have_count(3)
    expect(select.locator("option[value=sam3]")).to_contain_text("SAM 3")
    expect(select.locator("option[value=maskrcnn]")).to_contain_text("Mask R-CNN")
    select.select_option("maskrcnn")
    expect(page.get_by_test_id("engine-needs")).to_contain_text("Closed set")
    expect(page.get_by_test_id("detector-note")).to_contain_text("maskrcnn")
    select.select_option("sam3")
    expect(page.get_by_test_id("engine-needs")).to_contain_text("gated")
    page.check("input[name=learn_from_reviews]")
    shot(page, "engine-settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    proj.refresh_from_db()
    assert (proj.engine, proj.learn_from_reviews, proj.version) == ("sam3", True, 2)
    assert start_job(project=proj, user=owner).settings_snapshot["engine"] == "sam3"
    # After a reload the form shows what was saved.
    page.reload()
    expect(page.locator("select[name=engine]")).to_have_value("sam3")
    expect(page.locator("input[name=learn_from_reviews]")).to_be_checked()
    # Someone else saved meanwhile: the stale version is refused and nothing is lost silently.
    Project.objects.filter(pk=proj.pk).update(version=7, engine="gdino-sam2")
    page.locator("select[name=engine]").select_option("maskrcnn")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone else changed these settings")
    expect(page.locator("select[name=engine]")).to_have_value("gdino-sam2")
    proj.refresh_from_db()
    assert proj.engine == "gdino-sam2" and proj.version == 7
    shot(page, "engine-conflict")
