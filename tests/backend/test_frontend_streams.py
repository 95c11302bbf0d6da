"""The app's own pages and assets stream under ASGI as downloads do: Django's FileResponse read a
sync file whole first and warned "StreamingHttpResponse must consume synchronous iterators" on
every page load (black-box report ui5 #18)."""
import asyncio
import warnings

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

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert asyncio.run(body("")).startswith(b"<!doctype html>")
        assert asyncio.run(body("assets/app-1234.js")) == b"x" * 600_000
