"""The review app's two hottest requests, answered before Django's request machinery.

    GET  /api/projects/{p}/images/{i}/                  the image with its objects
    POST /api/projects/{p}/annotations/{a}/review/      accept / reject a class or mask

Through Django each costs a new thread, a new PostgreSQL connection (20-30 ms here, see
core/async_db.py), the middleware chain, DRF and ORM compilation: 15-30 ms of CPU on a 2-core box.
Here the caller and their role come from one raw query (core/fast_auth.py), the detail from
raw SQL and per-object cached JSON (detail_cache.py), and the review from fast_review.py (the
service's rules in raw SQL; the write itself in changes.record_review_raw), all on a few kept-open
connections from the event loop.

The HTTP contract is the view's, byte for byte. Only the plain successful case is handled here;
everything else (no or bad credentials, not a member, a role that may not, a missing image, a
body or query the view would validate, a failed CSRF check) goes to Django untouched, before
anything is written, and gets Django's answer; so do a stale version, another person's claim and
every other refusal of the review service.
"""
from __future__ import annotations

import json
import re

import psycopg

from backend.core import async_db, fast_auth
from backend.core.hot_asgi import COMMON_HEADERS, JSON_TYPES, Fallback, plain_headers, read_body, replay, strict_constant
from backend.projects.access import ROLE_CAPABILITIES, Capability, member_sql, roles_with


# [0-9], not \d: Django's int converter takes ASCII digits only.
_DETAIL = re.compile(r"^/api/projects/([0-9]{1,18})/images/([0-9]{1,18})/$")
_REVIEW = re.compile(r"^/api/projects/([0-9]{1,18})/annotations/([0-9]{1,18})/review/$")
# Django joins repeated headers; a request repeating one of these is left to it.
_SINGLE = (b"host", b"cookie", b"authorization", b"content-type")
_REVIEW_BODY_MAX = 512  # a review is ~60 bytes; a longer body is the view's to judge
_TARGETS = {"class", "mask", "both"}
_REVIEW_FIELDS = {"version", "target", "decision"}
_ALLOW = {"detail": b"GET, DELETE, HEAD, OPTIONS", "review": b"POST, OPTIONS"}


class HotRoutes:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("query_string"):
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        if method == "GET" and (m := _DETAIL.match(path)):
            kind = "detail"
        elif method == "POST" and (m := _REVIEW.match(path)):
            kind = "review"
        else:
            return await self.app(scope, receive, send)
        messages, body = await read_body(receive)
        try:
            if body is None or not plain_headers(scope, _SINGLE):
                raise Fallback()
            if kind == "detail":
                status, payload, extra = await _detail(scope, int(m[1]), int(m[2]))
            else:
                status, payload, extra = await _review(scope, int(m[1]), int(m[2]), body)
        except Fallback:
            return await self.app(scope, replay(messages, receive), send)
        headers = [*COMMON_HEADERS, (b"allow", _ALLOW[kind]), *extra, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _who(conn, scope, project_id: int, capability: Capability) -> fast_auth.Caller:
    return _allowed(await fast_auth.caller(conn, scope, project_id), capability)


def _allowed(caller: fast_auth.Caller | None, capability: Capability) -> fast_auth.Caller:
    if caller is None or caller.role is None or capability not in ROLE_CAPABILITIES.get(caller.role, ()):
        raise Fallback()
    return caller


async def _detail(scope, project_id: int, image_id: int) -> tuple[int, bytes, list]:
    from . import detail_cache

    try:
        async with async_db.pool.connection() as conn:
            proof = fast_auth.proof(scope)
            if proof is not None:
                # A caller this process knows: the image query checks them again itself. No row
                # (no longer allowed, or no such image) goes the step-by-step way below.
                head = await detail_cache.send_head(conn, project_id, image_id, _reader(proof),
                                                    {**proof.params, "u": proof.user_id, "readers": _READERS})
                body = await detail_cache.finish_detail(conn, head, image_id)
                if body is not None:
                    return 200, body, []
            body = await _detail_step_by_step(conn, scope, project_id, image_id)
    except (psycopg.Error, OSError):
        raise Fallback() from None
    if body is None:
        raise Fallback()
    return 200, body, []


_READERS = roles_with(Capability.READ)


def _reader(proof: fast_auth.Proof) -> str:
    """SQL: the proof holds for %(u)s, a member of %(p)s who may read."""
    return f"{member_sql('readers')} AND {proof.sql('%(u)s')}"


async def _detail_step_by_step(conn, scope, project_id: int, image_id: int) -> bytes | None:
    from . import detail_cache

    async with conn.pipeline():
        # Who is asking and the image go out together, one round trip (a session not yet decoded
        # here is looked up after them); the image row is only used once the caller may read it.
        read_caller = await fast_auth.send_lookup(conn, scope, project_id)
        head = await detail_cache.send_head(conn, project_id, image_id)
        if read_caller is not None:
            _allowed(await read_caller(), Capability.READ)
        else:
            await _who(conn, scope, project_id, Capability.READ)
        return await detail_cache.finish_detail(conn, head, image_id)


def _review_input(scope, body: bytes) -> dict:
    """The body, if it is a flat JSON object the view's serializer would take as it is; any
    other (a string version, nesting, another content type or charset) is the view's to judge."""
    from .models import ReviewState

    content_type = (fast_auth.header(scope, b"content-type") or b"").strip().lower()
    if content_type not in JSON_TYPES:
        raise Fallback()
    if len(body) > _REVIEW_BODY_MAX:
        raise Fallback()
    try:
        # No depth scan (core/json_limits.py) needed: this few bytes cannot nest deep enough to
        # trouble json.loads, and anything nested at all is handed to the view below.
        data = json.loads(body.decode("utf-8"), parse_constant=strict_constant)
    except Exception:  # too large or deep, not JSON, not UTF-8
        raise Fallback() from None
    if not isinstance(data, dict) or any(isinstance(v, (dict, list)) for v in data.values()):
        raise Fallback()
    if not data.keys() <= _REVIEW_FIELDS:
        raise Fallback()  # the serializer names the field it does not know
    version, target, decision = data.get("version"), data.get("target"), data.get("decision")
    if type(version) is not int or target not in _TARGETS or decision not in ReviewState.values:
        raise Fallback()
    return {"version": version, "target": target, "decision": decision}


async def _review(scope, project_id: int, annotation_id: int, body: bytes) -> tuple[int, bytes, list]:
    from rest_framework.renderers import JSONRenderer

    from . import fast_review

    data = _review_input(scope, body)
    # A request signed in by session cookie must pass DRF's CSRF check (a token's need not); one
    # that fails is the view's to refuse. Any other session request either passes or is not the
    # plain case (its caller lookup fails below).
    if fast_auth.session_key(scope) is not None and not fast_auth.csrf_ok(scope, body):
        raise Fallback()
    where = {"project_id": project_id, "annotation_id": annotation_id}
    try:
        async with async_db.pool.connection() as conn:
            # A caller this process knows is proven again inside the writing statement: one round
            # trip. Any doubt (a proof that no longer holds, not the plain review) writes nothing
            # and goes the step-by-step way below.
            proof = fast_auth.proof(scope)
            result = proof and await fast_review.review_in_one_statement(
                conn, **where, user_id=proof.user_id, proof=proof, **data)
            if not result:
                caller = await _who(conn, scope, project_id, Capability.REVIEW)
                result = await fast_review.review_in_one_statement(
                    conn, **where, user_id=caller.user_id, **data,
                ) or await fast_review.review(conn, **where, user_id=caller.user_id, **data)
    except (psycopg.Error, OSError, fast_review.Fallback):
        raise Fallback() from None
    return 200, JSONRenderer().render(result), []
