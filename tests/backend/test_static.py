"""Static files, the SPA catch-all and the health endpoint.

Static requests go through the real ASGI application (the object the web server serves), so whitenoise's
place in the middleware stack is what is tested, not a test-only shortcut.
"""
import asyncio
import threading

import pytest
from django.test import Client


def asgi_get(path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET through backend.config.asgi.application, as the web server would send it."""
    from backend.config.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    messages = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client never disconnects; Django cancels this wait

    async def send(message):
        messages.append(message)

    # A thread of its own: an earlier test in the same run may leave an event loop in this one.
    runner = threading.Thread(target=lambda: asyncio.run(application(scope, receive, send)))
    runner.start()
    runner.join(timeout=60)
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], headers, body


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_admin_css_is_served_through_the_asgi_app():
    status, headers, body = asgi_get("/static/admin/css/base.css")
    assert status == 200
    assert headers["content-type"].startswith("text/css")
    assert b"DJANGO Admin styles" in body


def test_missing_static_file_is_a_404_not_the_app_page():
    status, headers, body = asgi_get("/static/does-not-exist.css")
    assert status == 404
    assert "html" not in headers["content-type"]
    assert b"<!doctype" not in body.lower()


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/static/admin/css/nope.css", "text/plain"),
        ("/media/1/image.png", "text/plain"),
        ("/api/no-such-endpoint/", "application/json"),
        ("/assets/index-deadbeef.js", "text/plain"),  # a stale build's asset after a redeploy
    ],
)
def test_server_paths_never_get_the_app_page(path, content_type):
    response = Client().get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith(content_type)


def test_app_routes_and_built_assets_still_served(settings, tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    settings.FRONTEND_DIST = tmp_path
    client = Client()

    page = client.get("/projects/3/review")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"id=root" in b"".join(page.streaming_content)

    asset = client.get("/assets/index-abc123.js")
    assert asset.status_code == 200
    assert "javascript" in asset["Content-Type"]
    assert "immutable" in asset["Cache-Control"]


@pytest.mark.django_db
def test_health_reports_db_and_redis_ok():
    response = Client().get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "db": "ok", "redis": "ok"}
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_is_503_and_names_redis_when_redis_is_unreachable(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'no-redis.sock'}"
    response = Client().get("/api/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["db"] == "ok"
    assert body["redis"].startswith("error (")
