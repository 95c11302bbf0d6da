"""Black-box round 15: one browser's tabs share one session cookie. After another tab signed in
as someone else, an open tab kept showing its old user (ann1) while its requests went as the new
one (rev1): its edits were saved and audited as rev1 under a screen that said ann1. The open tab
now stops under the sign-in form, saying who the browser is signed in as."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .seed import make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in_with_the_form(tab, username: str) -> None:
    tab.locator("input[name=username]").fill(username)
    tab.locator("input[name=password]").fill("pw-for-tests-123")
    tab.get_by_role("button", name="Sign in").click()


def test_a_sign_in_as_someone_else_in_one_tab_stops_the_other_tabs(page, login_as):
    make_user("ann-tabs")
    make_user("rev-tabs")
    page.goto("/")
    sign_in_with_the_form(page, "ann-tabs")
    expect(page.get_by_test_id("whoami")).to_have_text("ann-tabs")
    other = page.context.new_page()
    other.goto("/")
    expect(other.get_by_test_id("whoami")).to_have_text("ann-tabs")

    other.get_by_role("button", name="Sign out").click()
    sign_in_with_the_form(other, "rev-tabs")
    expect(other.get_by_test_id("whoami")).to_have_text("rev-tabs")

    # The first tab no longer passes for ann-tabs: it says who this browser is now.
    expect(page.get_by_test_id("sign-in-again")).to_be_visible()
    expect(page.get_by_test_id("sign-in-why")).to_contain_text("This browser is now signed in as rev-tabs (in another tab)")
    # Its user signs in again there: the other tab, now acting as ann-tabs, stops in turn.
    sign_in_with_the_form(page.get_by_test_id("sign-in-again"), "ann-tabs")
    expect(page.get_by_test_id("sign-in-again")).to_have_count(0)
    expect(page.get_by_test_id("whoami")).to_have_text("ann-tabs")
    expect(other.get_by_test_id("sign-in-again")).to_be_visible()
    other.close()


def test_the_reason_stays_in_the_form_and_follows_later_sign_ins(page, login_as):
    """Black-box round 16: the reason was a toast, gone seconds later, leaving an unexplained form;
    a tab already behind the form kept "You were signed out" when the browser became someone else;
    and one whose own user signed in again in another tab still asked for the password."""
    make_user("ann-why")
    make_user("rev-why")
    page.goto("/")
    sign_in_with_the_form(page, "ann-why")
    expect(page.get_by_test_id("whoami")).to_have_text("ann-why")
    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    why = page.get_by_test_id("sign-in-again").get_by_test_id("sign-in-why")
    expect(why).to_contain_text("You were signed out")
    page.wait_for_timeout(7000)  # longer than a toast lives
    expect(why).to_contain_text("You were signed out")

    sign_in_with_the_form(other, "rev-why")  # the first tab, already behind its form, is told
    expect(why).to_contain_text("This browser is now signed in as rev-why (in another tab)")
    expect(why).to_contain_text("go on as ann-why")

    other.get_by_role("button", name="Sign out").click()
    sign_in_with_the_form(other, "ann-why")  # its own user again: the first tab goes on by itself
    expect(page.get_by_test_id("sign-in-again")).to_have_count(0)
    expect(page.get_by_test_id("whoami")).to_have_text("ann-why")
    other.close()
