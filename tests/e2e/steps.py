"""Steps the browser tests share: wait for the database to show a change, open an image for review."""
from __future__ import annotations

import time

from playwright.sync_api import expect


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def open_review(page, proj, image):
    """The review workspace of `image`, once its masks are drawn."""
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    expect(page.locator(f'[data-overlays-ready="{image.pk}"]')).to_have_count(1)
