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
