"""The "Accuracy & models" page in a real browser, with a real worker running the tiny models:
an admin measures the engine, trains a head and activates it; a viewer only reads."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from backend.learning.models import EvaluationRun, ModelVersion
from backend.projects.models import Role
from tests.backend.factories import add_member, make_user
from tests.backend.test_learning_jobs import reviewed_project

from .steps import until

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-train")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_admin_measures_trains_and_activates_viewer_reads(celery_worker, page, login_as):
    owner, project, _ = reviewed_project(n_reviewed=3, n_pending=1)
    login_as(owner)
    page.goto(f"/p/{project.pk}/models")
    expect(page.get_by_role("link", name="Accuracy & models")).to_have_class("tab active")
    expect(page.get_by_text("No evaluation yet.")).to_be_visible()
    page.get_by_test_id("start-evaluation").click()
    run_id = None
    deadline = time.monotonic() + 10
    while run_id is None and time.monotonic() < deadline:
        run_id = EvaluationRun.objects.filter(project=project).values_list("pk", flat=True).first()
        time.sleep(0.1)
    assert run_id, "clicking Measure now started no evaluation"
    row = page.get_by_test_id(f"evaluation-{run_id}")
    # The page polls until the worker is done, then shows the seed-002 row: numbers, not progress.
    expect(row.locator("td").nth(5)).to_have_text(__import__("re").compile(r"^\d+\.\d%$"), timeout=240_000)
    run = EvaluationRun.objects.get(pk=run_id)
    assert run.state == "done", run.error
    expect(row).to_contain_text("gdino-sam2")
    expect(row).to_contain_text("3 approved images")
    expect(row).to_contain_text(run.device)
    per_class = page.get_by_test_id("per-class")
    expect(per_class).to_contain_text("hammer")
    expect(per_class).to_contain_text("wrench")
    shot(page, "models-evaluated")

    page.get_by_test_id("train-head").click()
    expect(page.get_by_test_id("model-table")).to_contain_text("Projection head #1", timeout=240_000)
    version = ModelVersion.objects.get(project=project)
    model_row = page.get_by_test_id(f"model-{version.pk}")
    expect(model_row).to_contain_text("candidate")
    expect(model_row).to_contain_text("held-out objects")
    assert version.state == "candidate"
    shot(page, "models-candidate")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    model_row.get_by_role("button", name="Activate").click()  # activating is asked first; No keeps the candidate
    until(page, lambda: asked, what="the question")
    assert asked[0].startswith("Activate projection head #1?") and "Every later pre-annotation job uses it" in asked[0]
    page.wait_for_timeout(300)
    assert ModelVersion.objects.get(pk=version.pk).state == "candidate"
    page.once("dialog", lambda d: d.accept())
    model_row.get_by_role("button", name="Activate").click()
    expect(model_row).to_contain_text("active")
    expect(model_row).to_contain_text(owner.username)
    assert ModelVersion.objects.get(pk=version.pk).state == "active"
    shot(page, "models-activated")

    viewer = make_user(f"vera{time.monotonic_ns()}")
    add_member(project, viewer, Role.VIEWER)
    page.context.clear_cookies()
    login_as(viewer)
    page.goto(f"/p/{project.pk}/models")
    expect(page.get_by_test_id(f"evaluation-{run_id}")).to_be_visible()
    expect(page.get_by_text("Only project admins start an evaluation.")).to_be_visible()
    expect(page.get_by_test_id("start-evaluation")).to_have_count(0)
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    shot(page, "models-viewer")


def test_admin_cancels_live_runs_after_confirming(page, login_as):
    """A training or evaluation holds the one gpu worker: a live one has a Cancel button that asks
    first (round 6, F3). Rows made here are queued and never sent, so nothing else takes them."""
    from backend.learning.models import TrainingRun
    from tests.backend.factories import make_project

    owner = make_user(f"cora{time.monotonic_ns()}")
    project = make_project(owner)
    training = TrainingRun.objects.create(project=project, kind="head", created_by=owner)
    evaluation = EvaluationRun.objects.create(project=project, engine="gdino-sam2", total=3, created_by=owner)
    login_as(owner)
    page.goto(f"/p/{project.pk}/models")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_test_id(f"cancel-training-{training.pk}").click()  # No keeps it running
    until(page, lambda: asked, what="the question")
    assert asked[0].startswith(f"Cancel training #{training.pk}?")
    page.wait_for_timeout(300)
    assert TrainingRun.objects.get(pk=training.pk).state == "queued"
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id(f"cancel-training-{training.pk}").click()
    expect(page.get_by_test_id(f"training-{training.pk}")).to_contain_text(f"Cancelled by {owner.username}")
    expect(page.get_by_test_id(f"cancel-training-{training.pk}")).to_have_count(0)
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id(f"cancel-evaluation-{evaluation.pk}").click()
    expect(page.get_by_test_id(f"evaluation-{evaluation.pk}")).to_contain_text("Cancelled by")
    assert TrainingRun.objects.get(pk=training.pk).state == EvaluationRun.objects.get(pk=evaluation.pk).state == "cancelled"
    shot(page, "models-cancelled")

    viewer = make_user(f"vic{time.monotonic_ns()}")
    add_member(project, viewer, Role.VIEWER)
    queued = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner)
    page.context.clear_cookies()
    login_as(viewer)
    page.goto(f"/p/{project.pk}/models")
    expect(page.get_by_test_id(f"training-{queued.pk}")).to_contain_text("queued")  # members see it, admins cancel it
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
