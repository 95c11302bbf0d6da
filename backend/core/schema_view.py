"""The OpenAPI schema at /api/schema/, public like the docs page that reads it."""
from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer


class SchemaView(SpectacularAPIView):
    def _get_version_parameter(self, request):
        # One API version. ?version= was copied unescaped into Content-Disposition and the body: an
        # outsider's link served a download named as they chose ('setup.bat'), a newline an HTML 500.
        return None

    def handle_exception(self, exc):
        # Errors (a 405, a 406) as JSON like the rest of /api/, not YAML of an ErrorDetail.
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response
