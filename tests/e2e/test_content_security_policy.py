"""The app's page carries a Content-Security-Policy (core/frontend.py): a script that got into the
page some other way than the app's own bundle (an unescaped name, a browser extension's
injection) does not run, and the app itself works under it (every e2e test's page fixture fails
on a CSP refusal in the console)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .seed import make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.csp_refusals_expected
def test_an_injected_inline_script_does_not_run(page, login_as):
    login_as(make_user("csp-reader"))
    page.goto("/")
    expect(page.get_by_role("heading").first).to_be_visible()
    ran = page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__injected = 1';
        document.body.appendChild(s);
        return window.__injected === 1;
    }""")
    assert ran is False, "an inline script injected into the page ran"
    page.evaluate("() => { const i = document.createElement('img'); i.setAttribute('onerror', 'window.__handler = 1'); i.src = '/x.png'; document.body.appendChild(i); }")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__handler === 1") is False, "an inline event handler ran"


def test_the_app_runs_under_its_policy(page, login_as):
    """No refusal while the app loads and moves between pages (the fixture fails on any)."""
    login_as(make_user("csp-walker"))
    page.goto("/")
    expect(page.get_by_role("heading").first).to_be_visible()
    page.goto("/projects/new")
    page.wait_for_load_state("networkidle")
