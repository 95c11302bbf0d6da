"""Serves the built review app (frontend/dist): assets by path, index.html for app routes.

Only app routes get index.html. A path under a server prefix (/api/, /static/, /media/, ...) or a
missing build asset answers a plain 404: a stylesheet or JSON client that gets the HTML page
instead fails in confusing ways (admin without CSS, "Unexpected token <").
"""
import mimetypes

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .files import StreamedFile

_MISSING = (
    "<!doctype html><title>Razmetka</title><h1>Razmetka</h1>"
    "<p>The web app is not built yet: run <code>make frontend</code>. The API is at <a href='/api/docs/'>/api/docs/</a>.</p>"
)


# The app's page may run only its own bundle: an injected <script> or inline handler (a name that
# slipped past escaping, say) is refused by the browser, and no other site may frame the page.
# Inline styles stay allowed (React sets style attributes; the canvas tools size elements so).
APP_CSP = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:", "font-src 'self' data:", "connect-src 'self'", "worker-src 'self' blob:",
    "object-src 'none'", "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'",
))


def _server_prefixes() -> tuple[str, ...]:
    static = settings.STATIC_URL.strip("/")
    media = settings.MEDIA_URL.strip("/")
    return tuple(p for p in ("api", "admin", "ws", static, media) if p)


def _not_found(path: str):
    if path == "api" or path.startswith("api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return HttpResponseNotFound(f"Not found: /{path}\n", content_type="text/plain; charset=utf-8")


# Exempt from the CSRF check, as DRF's views are: this view writes nothing, and a POST to an /api/
# URL that matches no route (a token client's typo) must get the API's JSON 404, not Django's
# HTML "CSRF verification failed" page. Other methods than GET/HEAD get 405 on app routes.
@csrf_exempt
def frontend_view(request, path: str = ""):
    if path == "api" or path.startswith("api/"):
        return _not_found(path)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    dist = settings.FRONTEND_DIST.resolve()
    candidate = (dist / path).resolve()
    if path and candidate.is_file() and dist in candidate.parents:
        content_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
        response = StreamedFile(open(candidate, "rb"), content_type=content_type)
        if "/assets/" in f"/{path}":
            response["Cache-Control"] = "public, max-age=31536000, immutable"  # hashed file names
        return response
    if path.split("/", 1)[0] in (*_server_prefixes(), "assets"):
        return _not_found(path)
    index = dist / "index.html"
    if not index.is_file():
        return HttpResponse(_MISSING)
    response = StreamedFile(open(index, "rb"), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Content-Security-Policy"] = APP_CSP
    return response
