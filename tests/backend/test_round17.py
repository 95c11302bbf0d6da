"""Black-box round 17 and the items left alone at earlier stops: what the API and its pages still
got wrong."""
from __future__ import annotations

import re

import pytest

from .factories import make_user

pytestmark = pytest.mark.django_db


def test_the_api_docs_page_loads_nothing_from_another_host(client_for):
    """/api/docs/ loaded Swagger UI's script and styles from a CDN: on a host without internet
    (the embedded set-up's whole point) the page was blank. Its assets come from /static/ now."""
    page = client_for(make_user("docs-reader")).get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), html
    assets = re.findall(r"""(?:src|href)=["']?(/static/[^"'\s>]+)""", html)
    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        got = client_for(make_user(f"asset{len(asset)}")).get(asset)
        assert got.status_code == 200, asset


LONG_ONCE_FOLDED = "\ufdfa" * 7  # 7 characters as sent, 126 once NFKC-folded (the class column holds 120)


def test_names_that_grow_when_folded_are_measured_folded(client_for):
    """Names were measured before NFKC folding: 7 x U+FDFA (126 characters folded) passed the
    120-character check and the INSERT failed with an HTML 500, for classes (create and rename),
    projects (200) and gallery zip folders."""
    from .factories import image_bytes, make_class, make_project, zip_bytes

    owner = make_user("folder")
    project = make_project(owner)
    api = client_for(owner)
    made = api.post(f"/api/projects/{project.pk}/classes/", {"name": LONG_ONCE_FOLDED}, format="json")
    assert made.status_code == 400, made.content
    assert "at most 120 characters" in made.json()["name"][0] and "126" in made.json()["name"][0]
    tool = make_class(project, "tool")
    renamed = api.patch(f"/api/projects/{project.pk}/classes/{tool.pk}/",
                        {"name": "\u3392" * 60, "version": tool.version}, format="json")
    assert renamed.status_code == 400 and "at most 120 characters" in renamed.json()["name"][0], renamed.content
    new_project = api.post("/api/projects/", {"name": "\ufdfa" * 12}, format="json")
    assert new_project.status_code == 400 and "at most 200 characters" in new_project.json()["name"][0]
    fine = api.post(f"/api/projects/{project.pk}/classes/", {"name": "\ufdfa" * 6}, format="json")
    assert fine.status_code == 201 and len(fine.json()["name"]) == 108, fine.content

    from django.core.files.uploadedfile import SimpleUploadedFile

    folder = zip_bytes({f"{LONG_ONCE_FOLDED}/a.png": image_bytes(color=(9, 8, 7))})
    upload = api.post(f"/api/projects/{project.pk}/gallery/",
                      {"files": [SimpleUploadedFile("g.zip", folder, content_type="application/zip")]}, format="multipart")
    assert upload.status_code in (200, 201, 400), upload.content
    assert "at most 120 characters" in upload.content.decode(), upload.content
