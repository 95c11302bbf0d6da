"""Serves the built review app (frontend/dist): assets by path, index.html for app routes."""
import mimetypes

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse

_MISSING = (
    "<!doctype html><title>Razmetka</title><h1>Razmetka</h1>"
    "<p>The web app is not built yet: run <code>make frontend</code>. The API is at <a href='/api/docs/'>/api/docs/</a>.</p>"
)


def frontend_view(request, path: str = ""):
    dist = settings.FRONTEND_DIST.resolve()
    if path.startswith(("api/", "admin/", "ws/")):
        raise Http404
    candidate = (dist / path).resolve()
    if path and candidate.is_file() and dist in candidate.parents:
        content_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
        response = FileResponse(open(candidate, "rb"), content_type=content_type)
        if "/assets/" in f"/{path}":
            response["Cache-Control"] = "public, max-age=31536000, immutable"  # hashed file names
        return response
    index = dist / "index.html"
    if not index.is_file():
        return HttpResponse(_MISSING)
    response = FileResponse(open(index, "rb"), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response
