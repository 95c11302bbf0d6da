"""End-to-end fixtures: the real app (uvicorn on the test database) driven by headless Debian chromium.

The server is a subprocess on a free port, pointed at pytest-django's test database through
RAZMETKA_DB_NAME; tests use `django_db(transaction=True)` so it sees their committed rows.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
RESULTS = ROOT / "test-results"
CHROMIUM = os.environ.get("RAZMETKA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

from playwright.sync_api import expect as _expect  # noqa: E402

from tests.live_server import start_web, stop  # noqa: E402

_expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _build_frontend() -> None:
    from django.conf import settings

    if (settings.FRONTEND_DIST / "index.html").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("frontend/dist is missing and npm is not installed")
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker, tiny_models_config):
    from django.db import connection

    _build_frontend()
    # The web side knows the workers' models too (it refuses to start an evaluation without them).
    proc, url = start_web(connection.settings_dict["NAME"], log_name="e2e-server.log",
                          extra_env={"RAZMETKA_ML_CONFIG": tiny_models_config})
    yield url
    stop(proc)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make in
    # between are still synchronous, so Django's async guard must not trip (only while it runs).
    had = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()
    if had is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, live_url, request):
    context = browser.new_context(base_url=live_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10000)
    pg = context.new_page()
    in_flight: set = set()
    context.on("request", lambda r: in_flight.add(r) if "/api/" in r.url else None)
    context.on("requestfinished", lambda r: in_flight.discard(r))
    context.on("requestfailed", lambda r: in_flight.discard(r))
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        RESULTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_")
        try:
            pg.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)
        except Exception:
            pass
        (RESULTS / f"{name}.console.txt").write_text("\n".join(console))
    _leave_quietly(pg, in_flight)
    context.close()
    # The page's Content-Security-Policy (core/frontend.py) must not block anything the app does.
    if rep is not None and rep.passed and not request.node.get_closest_marker("csp_refusals_expected"):
        refused = [line for line in console if "Content Security Policy" in line]
        assert not refused, f"the app's CSP refused something: {refused[:3]}"


def _leave_quietly(pg, in_flight: set, timeout_s: float = 5.0) -> None:
    """Leave the app and let the requests that sends (the claim's release on pagehide, a last
    heartbeat) finish before the test's database is flushed: a write still running in the
    server while the flush truncates the tables deadlocks it."""
    import time

    try:
        pg.goto("about:blank")
    except Exception:
        return
    deadline = time.monotonic() + timeout_s
    while in_flight and time.monotonic() < deadline:
        pg.wait_for_timeout(50)
    pg.wait_for_timeout(150)  # the server commits after the response is on its way


@pytest.fixture
def login_as(page, live_url):
    """Sign the browser in as a user without the login form (a real session row)."""
    from django.test import Client

    def sign_in(user):
        client = Client()
        client.force_login(user)
        page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_url}])
        return page

    return sign_in
