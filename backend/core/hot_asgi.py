"""What the hot routes (annotations/hot_routes.py, images/hot_upload.py) share: answering a
request before Django, or handing it to Django exactly as it came.

A hot route reads the request (and its body) itself; when it is not the plain case it raises
Fallback, and the request goes to Django with the messages already read replayed first, so the
view sees the request as the client sent it.
"""
from __future__ import annotations

from . import fast_auth

JSON_TYPES = {b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"}
BODY_MAX = 64 * 1024
# The headers Django + DRF put on these answers (security middleware, DRF's Allow/Vary,
# SessionMiddleware's Vary: Cookie); tests/backend/test_api_hot_paths.py and
# test_upload_hot_routes.py compare them.
COMMON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"vary", b"Cookie"),  # DRF adds "Accept" only when it can render more than JSON
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class Fallback(Exception):
    """Not the plain case: Django answers."""


def strict_constant(constant):
    raise ValueError(constant)  # NaN / Infinity: DRF's parser refuses them


def drf_datetime(value) -> str:
    """A datetime as DRF renders it (UTC as "Z"), for bodies rendered without its serializers."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def plain_headers(scope, single) -> bool:
    """None of the `single` headers repeated (Django joins repeats: the view reads those), and a
    host Django allows."""
    names = [k for k, _ in scope["headers"]]
    return not any(names.count(n) > 1 for n in single) and fast_auth.host_allowed(scope)


async def read_body(receive):
    """The whole request body (None past BODY_MAX, or when the client left), plus the messages
    read, so Django can be handed the request as it came."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > BODY_MAX:
            return messages, None
        if not message.get("more_body"):
            return messages, b"".join(m.get("body", b"") for m in messages)


def replay(messages, receive):
    """A receive() that gives the messages already read first, then the client's."""
    pending = list(messages)

    async def receive_again():
        return pending.pop(0) if pending else await receive()

    return receive_again
