"""Project pages, round 6 of the black-box report (ui6): the Images list opens an image from the
keyboard, an error page from the server or a proxy is said in words (not its markup), and an
image that failed to open can be tried again."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .seed import add_prediction, make_class, make_image, make_project, make_user, mark_prelabeled, rect_mask

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project():
    owner = make_user("pavel")
    return make_project(owner, name="Workbench"), owner


def test_the_images_list_opens_an_image_from_the_keyboard(page, project, login_as):
    """Rows opened only on a mouse click (a <tr onClick>): Tab reached the Delete buttons alone."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=71)
    login_as(owner)
    page.goto(f"/p/{proj.pk}/images")
    link = page.get_by_role("link", name=image.original_name)
    expect(link).to_have_attribute("href", f"/p/{proj.pk}/review/{image.pk}")
    for _ in range(40):  # Tab until the image's link has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.getAttribute('href')") == f"/p/{proj.pk}/review/{image.pk}":
            break
    else:
        raise AssertionError("Tab never reached the image's link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/p/{proj.pk}/review/{image.pk}$"))
    expect(page.locator(f'[data-overlays-ready="{image.pk}"]')).to_have_count(1)


def test_an_html_error_page_is_said_in_words_and_the_image_can_be_tried_again(page, project, login_as):
    """A 500 on the image showed "Couldn't open the image: <h1>Server Error (500)</h1>" and only
    offered the next image."""
    proj, owner = project
    image = make_image(proj, width=400, height=300, seed=72)
    add_prediction(image, make_class(proj, "hammer"), rect_mask(300, 400, 0, 0, 20, 20))
    mark_prelabeled(image)
    login_as(owner)
    detail = re.compile(rf".*/api/projects/{proj.pk}/images/{image.pk}/$")
    page.route(detail, lambda route: route.fulfill(status=500, content_type="text/html",
                                                  body="<h1>Server Error (500)</h1>"))
    page.goto(f"/p/{proj.pk}/review/{image.pk}")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Couldn't open the image: The server had an unexpected problem (500). "
                               "Try again; if it keeps happening, tell your admin.")
    page.unroute(detail)
    page.get_by_test_id("retry-load").click()
    expect(page.locator(f'[data-overlays-ready="{image.pk}"]')).to_have_count(1)
