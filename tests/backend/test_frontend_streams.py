"""The app's own pages and assets stream under ASGI as downloads do: Django's FileResponse read a
sync file whole first and warned "StreamingHttpResponse must consume synchronous iterators" on
every page load (black-box report ui5 #18)."""
import asyncio
import warnings
from concurrent.futures import ThreadPoolExecutor

from django.test import RequestFactory

from backend.core.frontend import frontend_view


def test_index_and_assets_stream_without_the_buffering_warning(settings, tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Razmetka</title>")
    (tmp_path / "assets" / "app-1234.js").write_bytes(b"x" * 600_000)
    settings.FRONTEND_DIST = tmp_path

    async def body(path):
        response = frontend_view(RequestFactory().get(f"/{path}"), path)
        parts = [part async for part in response]
        response.close()
        return b"".join(parts)

    def run(path):
        # A loop of its own on another thread: one an earlier test left running here refuses asyncio.run.
        def strict():
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return asyncio.run(body(path))

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(strict).result()

    assert run("").startswith(b"<!doctype html>")
    assert run("assets/app-1234.js") == b"x" * 600_000


def test_the_app_page_carries_a_content_security_policy(settings, tmp_path):
    """Only the app's own scripts run in its page, and no other site may frame it."""
    (tmp_path / "index.html").write_text("<!doctype html><title>Razmetka</title>")
    settings.FRONTEND_DIST = tmp_path
    response = frontend_view(RequestFactory().get("/p/1/review"), "p/1/review")
    response.close()
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and "unsafe-inline" not in policy["script-src"]
