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


def until(page, predicate, timeout=10.0, what="condition"):
    """`wait_for` that keeps Playwright's loop running: route handlers and listeners only run then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")


def open_review(page, proj, image):
    """The review workspace of `image`, once its picture and masks are drawn (Enter refuses to
    accept before the picture is)."""
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    stage_drawn(page, image.pk)


def stage_drawn(page, image_id: int):
    """Wait until the workspace shows `image_id`'s picture and masks (Enter waits for the picture)."""
    expect(page.locator(f'[data-overlays-ready="{image_id}"][data-image-ready="{image_id}"]')).to_have_count(1)


def brush_stroke(page):
    """The brush (b), dragged 120 px across the middle of the stage."""
    page.keyboard.press("b")
    box = page.get_by_test_id("review-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 60, cy)
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(cx - 60 + i * 10, cy)
    page.mouse.up()


def toasts(page):
    return page.get_by_test_id("toast")


def toast(page, text):
    return toasts(page).filter(has_text=text)


def in_thread(fn, *args, **kwargs):
    """Run a service call off the browser's thread: Playwright's event loop lives in this one and
    the services' live events (async_to_sync) refuse to run next to a running loop."""
    import threading

    from django.db import connection

    result = {}

    def target():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised below
            result["error"] = exc
        finally:
            connection.close()

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def sideways(page) -> int:
    """How far the page itself scrolls sideways (a table scrolling in its own box does not count)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
