"""The websocket handshake's Origin must be this site itself: scheme, host and port.

Channels' AllowedHostsOriginValidator compares the host only, so a page on another port of the
same host (http://127.0.0.1:9999, a dev server on :3000) opened a signed-in member's socket:
browsers send the session cookie to every port of a host. Django's CSRF check compares the whole
origin with the request's Host for HTTP writes; this does the same for the socket, with
CSRF_TRUSTED_ORIGINS as the same escape hatch (a proxy that rewrites Host)."""
from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(scope) -> bool:
    origin = _header(scope, b"origin")
    host = _header(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    host = (host or _header(scope, b"host") or "").split(",")[0].strip().lower()
    if not origin or not host:
        return False
    if origin.rstrip("/") in settings.CSRF_TRUSTED_ORIGINS:
        return True
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:  # "http://127.0.0.1:8781.evil.com": not a port at all
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return False
    netloc = parts.hostname if port in (None, DEFAULT_PORTS[parts.scheme]) else f"{parts.hostname}:{port}"
    if parts.hostname.count(":"):  # IPv6 literal
        netloc = f"[{parts.hostname}]" + ("" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}")
    return netloc == host


class SameOriginValidator:
    """ASGI middleware: a websocket whose Origin is not this site is refused at the handshake."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
