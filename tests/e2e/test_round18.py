"""Browser, round 18: a role changed by another admin is followed live on every page of the
project (a promoted member saw the admin tabs only after a reload)."""
from __future__ import annotations

import pytest

from .seed import add_member, make_project, make_user
from .steps import in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_promoted_member_gets_the_admin_pages_without_a_reload(page, login_as):
    from playwright.sync_api import expect

    from backend.projects import services as project_services
    from backend.projects.models import Role

    owner, bob = make_user("olga"), make_user("bob")
    proj = make_project(owner, name="Promoted")
    membership = add_member(proj, bob, Role.REVIEWER)
    login_as(bob)
    page.goto(f"/p/{proj.pk}/images")
    bar = page.get_by_test_id("project-bar")
    expect(bar).to_be_visible()
    expect(bar.get_by_text("Settings")).to_have_count(0)
    page.wait_for_timeout(300)  # let the websocket join
    in_thread(project_services.change_role, project=proj, membership_id=membership.pk, role=Role.ADMIN,
              version=membership.version)
    expect(bar.get_by_text("Settings")).to_be_visible()
    membership.refresh_from_db()
    in_thread(project_services.change_role, project=proj, membership_id=membership.pk, role=Role.ANNOTATOR,
              version=membership.version)
    expect(bar.get_by_text("Settings")).to_have_count(0)
