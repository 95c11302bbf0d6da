"""Regression tests for the review workspace, fourth round: the stage bar stays one row with every
tool at 1400 px (the tool hints wrapped it, leaving `?` alone on a second row)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask
from .steps import open_review

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("olga")
    return make_project(owner, name="Hand tools"), owner


@pytest.mark.parametrize("width", [1400, 1280])
def test_the_stage_bar_is_one_row_with_every_tool(page, project, login_as, width):
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=4)
    ann = add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 20, 20, 120, 120))
    mark_prelabeled(image)
    page.set_viewport_size({"width": width, "height": 900})
    login_as(owner)
    open_review(page, proj, image)
    page.get_by_test_id(f"object-{ann.pk}").click()
    bar, hint = page.get_by_test_id("stage-bar"), page.get_by_test_id("stage-hint")
    heights = set()
    for key, tool in [("v", "select"), ("b", "brush"), ("e", "eraser"), ("l", "polygon"), ("x", "box"), ("o", "click")]:
        page.keyboard.press(key)
        expect(page.get_by_test_id(f"tool-{tool}")).to_have_class("active")
        help_button = bar.get_by_role("button", name="?", exact=True)
        first_tool = page.get_by_test_id("tool-select")
        assert abs(help_button.bounding_box()["y"] - first_tool.bounding_box()["y"]) < 2, f"{tool}: ? on a second row"
        heights.add(round(bar.bounding_box()["height"] + hint.bounding_box()["height"]))
        if tool == "click":
            expect(hint).to_contain_text("Enter saves")
        page.keyboard.press("Escape")
    # The picture's room does not change with the tool (the canvas is not resized under the user).
    assert len(heights) == 1, heights
