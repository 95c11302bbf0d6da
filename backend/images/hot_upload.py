"""A chunked upload's three requests per file, answered before Django's request machinery.

    POST /api/projects/{p}/images/uploads/                      open a session (JSON)
    PUT  /api/projects/{p}/images/uploads/{s}/?offset=N[&finish=1]  a chunk (the last also finishes)
    GET  /api/projects/{p}/images/uploads/{s}/                  where it stands / its result

A drop of 10,000 photos is 30,000 of these. Through Django each cost 15-20 ms of CPU here before
any work (a thread, the middleware chain, DRF, four or five ORM queries; a chunk's body was also
spooled to a temp file and copied again), as much as the worker's decoding (docs/benchmarks.md).
Here the caller and their role come from one raw query on a kept-open connection
(core/fast_auth.py), and the service's rules run in raw SQL: upload_sessions.chunk_refusal and
write_at for a chunk, in one transaction holding the session's row lock as write_chunk does;
finishing, as finish_session does, in a second one (the file moved into media storage in a
thread, since that may be S3), and the worker's task sent through the outbox.

The HTTP contract is the views'. Only the plain successful case is handled here; every other
request (no or bad credentials, a role that may not upload, a failed CSRF check, another
person's or an unknown session, a wrong offset, a session no longer receiving, a body the view's
serializer would refuse, too many open uploads, an odd query or header) goes to Django
untouched, body included, before anything is written, and gets its answer. Chunk bodies are held
in memory by at most BUFFERS requests per process at once; beyond that Django takes the request
and spools its body to disk as before.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re

import psycopg
from django.conf import settings
from django.utils import timezone

from backend.core import async_db, fast_auth, outbox
from backend.core.errors import DomainError
from backend.core.hot_asgi import (
    COMMON_HEADERS, JSON_TYPES, Fallback, drf_datetime, plain_headers, read_body, replay, strict_constant,
)
from backend.projects.access import ROLE_CAPABILITIES, Capability

from . import upload_sessions
from .models import Image, UploadSession, UploadStatus

logger = logging.getLogger("razmetka.uploads")

_SESSIONS = re.compile(r"^/api/projects/([0-9]{1,18})/images/uploads/$")
_SESSION = re.compile(r"^/api/projects/([0-9]{1,18})/images/uploads/([0-9]{1,18})/$")
# Only the forms the browser and the API docs send; anything else is the view's to read.
# `finish` takes 1/0/true/false in any case, as the view does (flag_from).
_CHUNK_QUERY = re.compile(rb"^offset=([0-9]{1,18})(?:&finish=(?i:(1|true)|0|false))?$")
_SINGLE = (b"host", b"cookie", b"authorization", b"content-length", b"content-type")
_ALLOW_ONE = b"GET, PUT, DELETE, HEAD, OPTIONS"
_ALLOW_OPEN = b"GET, POST, HEAD, OPTIONS"  # as the view answers (GET lists your open uploads)
_OPEN_BODY_MAX = 8 * 1024  # a file name (<= 5,000 characters), a size and a hash
BUFFERS = 8
_FIELDS = ("id", "file_name", "size_bytes", "received_bytes", "sha256", "status", "result", "created_at", "updated_at")


class UploadRoutes:
    def __init__(self, app) -> None:
        self.app = app
        self.buffering = 0  # chunk bodies held right now (one event loop per process: no lock)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        if method == "PUT" and (m := _SESSION.match(path)):
            return await self._chunk(scope, receive, send, int(m[1]), int(m[2]))
        if method == "GET" and not scope.get("query_string") and (m := _SESSION.match(path)) and _plain(scope):
            return await self._answer(scope, receive, send, lambda: _get(scope, int(m[1]), int(m[2])), _ALLOW_ONE)
        if method == "POST" and not scope.get("query_string") and (m := _SESSIONS.match(path)) and _plain(scope):
            return await self._open(scope, receive, send, int(m[1]))
        return await self.app(scope, receive, send)

    async def _answer(self, scope, receive, send, work, allow: bytes, messages=(), status: int = 200):
        try:
            payload = await work()
        except Fallback:
            return await self.app(scope, replay(list(messages), receive), send)
        headers = [*COMMON_HEADERS, (b"allow", allow), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _open(self, scope, receive, send, project_id: int):
        messages, body = await read_body(receive)
        if body is None or len(body) > _OPEN_BODY_MAX:
            return await self.app(scope, replay(messages, receive), send)
        await self._answer(scope, receive, send, lambda: _create(scope, project_id, body), _ALLOW_OPEN, messages, 201)

    async def _chunk(self, scope, receive, send, project_id: int, session_id: int):
        query = _CHUNK_QUERY.match(scope.get("query_string") or b"")
        length = _length(scope) if _plain(scope) else None
        if query is None or length is None or self.buffering >= BUFFERS:
            return await self.app(scope, receive, send)
        offset, finish = int(query[1]), query[2] is not None
        self.buffering += 1
        messages: list = []
        try:
            try:
                try:
                    async with async_db.pool.connection() as conn:  # not held while the body arrives
                        user_id = await _uploader(conn, scope, project_id)
                except (psycopg.Error, OSError):
                    raise Fallback() from None
                body = await _read(receive, length, messages)
                if body is None:
                    return  # the client left mid-chunk: nothing was written, nobody to answer
            except Fallback:
                return await self.app(scope, replay(messages, receive), send)
            await self._answer(scope, receive, send, lambda: _write_chunk(project_id, session_id, user_id, offset, body, finish),
                               _ALLOW_ONE, messages)
        finally:
            self.buffering -= 1


def _plain(scope) -> bool:
    """No repeated identity or framing headers, no chunked framing, an allowed host."""
    return fast_auth.header(scope, b"transfer-encoding") is None and plain_headers(scope, _SINGLE)


def _length(scope) -> int | None:
    """The chunk's Content-Length, when the route may take it: a whole number of bytes within
    the chunk limit (anything else is the view's to refuse)."""
    raw = fast_auth.header(scope, b"content-length")
    if raw is None or not raw.isdigit() or len(raw) > 9:
        return None
    length = int(raw)
    return length if 0 < length <= upload_sessions.MAX_CHUNK_BYTES else None


async def _uploader(conn, scope, project_id: int) -> int:
    """The caller's user id, if they may upload here (else Fallback: the view answers)."""
    caller = await fast_auth.caller(conn, scope, project_id)
    if caller is None or caller.role is None or Capability.ANNOTATE not in ROLE_CAPABILITIES.get(caller.role, ()):
        raise Fallback()
    # The CSRF check of a session's unsafe request; for a PUT it reads no body (the JSON of a
    # POST is not a form, so it reads none there either).
    if caller.session and scope["method"] != "GET" and not fast_auth.csrf_ok(scope, b""):
        raise Fallback()
    return caller.user_id


async def _read(receive, length: int, messages: list) -> list[bytes] | None:
    """The body's parts (None: the client disconnected), each message read kept in `messages`
    for a replay. A body longer or shorter than its Content-Length is the view's to judge."""
    parts, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        if size > length or (not message.get("more_body") and size != length):
            raise Fallback()
        if not message.get("more_body"):
            return parts


_SQL: dict[str, str] = {}


def _sql(name: str) -> str:
    if not _SQL:
        t, images = UploadSession._meta.db_table, Image._meta.db_table
        fields = ", ".join(_FIELDS)
        mine = "id = %(s)s AND project_id = %(p)s AND created_by_id = %(u)s"
        _SQL.update({
            "get": f"SELECT {fields} FROM {t} WHERE {mine}",
            "lock": f"SELECT status, received_bytes, size_bytes FROM {t} WHERE {mine} FOR UPDATE",
            "move": f"UPDATE {t} SET received_bytes = %(to)s, updated_at = %(now)s WHERE id = %(s)s RETURNING {fields}",
            "queue": f"UPDATE {t} SET status = %(queued)s, stored_name = %(stored)s, updated_at = %(now)s "
                     f"WHERE id = %(s)s RETURNING {fields}",
            "sent": f"UPDATE {t} SET dispatched_at = now() WHERE id = %(s)s AND dispatched_at IS NULL",
            # create_session's rules in its order: the open-uploads bound, then a known hash makes a
            # finished session reporting the duplicate; nothing is inserted past the bound.
            "open": (
                f"WITH open_now AS (SELECT count(*) AS n FROM {t} WHERE project_id = %(p)s AND created_by_id = %(u)s "
                "AND status = %(receiving)s::text AND updated_at >= %(since)s), "
                f"known AS (SELECT min(id) AS id FROM {images} WHERE project_id = %(p)s AND sha256 = %(sha)s::text AND %(sha)s::text <> '') "
                f"INSERT INTO {t} (project_id, created_by_id, file_name, size_bytes, received_bytes, sha256, status, result, "
                "stored_name, dispatched_at, created_at, updated_at) "
                "SELECT %(p)s, %(u)s, %(name)s::text, %(size)s, 0, %(sha)s::text, "
                "CASE WHEN known.id IS NULL THEN %(receiving)s::text ELSE %(done)s::text END, "
                "CASE WHEN known.id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('created', '[]'::jsonb, "
                "'duplicates', jsonb_build_array(jsonb_build_object('name', %(name)s::text, 'existing_id', known.id)), "
                "'errors', '[]'::jsonb) END, '', NULL, %(now)s, %(now)s "
                f"FROM open_now, known WHERE open_now.n < %(max_open)s RETURNING {fields}"
            ),
        })
    return _SQL[name]


async def _get(scope, project_id: int, session_id: int) -> bytes:
    """upload_sessions.get_session + the serializer."""
    try:
        async with async_db.pool.connection() as conn:
            user_id = await _uploader(conn, scope, project_id)
            row = await (await conn.execute(_sql("get"), {"s": session_id, "p": project_id, "u": user_id})).fetchone()
    except (psycopg.Error, OSError):
        raise Fallback() from None
    if row is None:
        raise Fallback()
    return _render(row)


def _open_input(scope, body: bytes) -> tuple[str, int, str]:
    """(name, size, sha256) as the view's serializer and create_session take them; Fallback for
    anything the view would refuse or read otherwise."""
    from .serializers import UploadSessionCreateSerializer

    if (fast_auth.header(scope, b"content-type") or b"").strip().lower() not in JSON_TYPES:
        raise Fallback()
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=strict_constant)
    except Exception:
        raise Fallback() from None
    if not isinstance(data, dict) or any(isinstance(v, (dict, list)) for v in data.values()):
        raise Fallback()  # nesting: the view's parser judges its depth
    serializer = UploadSessionCreateSerializer(data=data)
    if not serializer.is_valid():
        raise Fallback()
    valid = serializer.validated_data
    size, sha256 = valid["size_bytes"], (valid.get("sha256") or "").lower()
    if size > settings.MAX_UPLOAD_BYTES or (sha256 and not upload_sessions.SHA256_FORM.match(sha256)):
        raise Fallback()
    return upload_sessions.session_file_name(valid["file_name"]), size, sha256


async def _create(scope, project_id: int, body: bytes) -> bytes:
    """upload_sessions.create_session, in one statement (after its lock)."""
    name, size, sha256 = _open_input(scope, body)
    now = timezone.now()
    try:
        async with async_db.pool.connection() as conn:
            user_id = await _uploader(conn, scope, project_id)
            async with conn.transaction():  # the statement's snapshot comes after the lock's wait
                await conn.execute(upload_sessions.OPEN_LOCK_SQL, upload_sessions.open_lock_args(project_id, user_id))
                row = await (await conn.execute(_sql("open"), {
                    "p": project_id, "u": user_id, "name": name, "size": size, "sha": sha256, "now": now,
                    "since": now - upload_sessions.OPEN_WINDOW, "max_open": upload_sessions.MAX_OPEN_SESSIONS,
                    "receiving": UploadStatus.RECEIVING.value, "done": UploadStatus.DONE.value,
                })).fetchone()
    except (psycopg.Error, OSError):
        raise Fallback() from None
    if row is None:
        raise Fallback()  # too many open uploads: the view says so
    if row[5] == UploadStatus.RECEIVING:
        upload_sessions.start_part_file(row[0])
    return _render(row)


async def _write_chunk(project_id: int, session_id: int, user_id: int, offset: int, body: list[bytes], finish: bool) -> bytes:
    """write_chunk, raw; with finish, then finish_session. Fallback with nothing written, or
    (finishing only) with the chunk written: the view then answers 409 with received_bytes at
    the end, and the client's finish call gets the reason."""
    length = sum(len(part) for part in body)
    key = {"s": session_id, "p": project_id, "u": user_id}
    path = upload_sessions.temp_path_of(session_id)
    try:
        async with async_db.pool.connection() as conn:
            async with conn.transaction():
                row = await (await conn.execute(_sql("lock"), key)).fetchone()
                if row is None or upload_sessions.chunk_refusal(*row, offset, length, finish) is not None:
                    raise Fallback()
                # Off the event loop: megabytes onto disk would stall every other request here.
                await asyncio.to_thread(upload_sessions.write_at, path, offset, body)
                moved = await (await conn.execute(_sql("move"), {**key, "to": offset + length, "now": timezone.now()})).fetchone()
            if finish:
                moved = await _finish(conn, key, path) or moved
    except (psycopg.Error, OSError, DomainError):
        raise Fallback() from None  # rolled back; the view tries again and answers as it does
    return _render(moved)


async def _finish(conn, key: dict, path) -> tuple | None:
    """finish_session: the file into media storage (the worker may be on another host), the
    session queued, its task sent once committed (the sweeper sends it if the broker is down)."""
    from backend.core.files import save_finished_file

    async with conn.transaction():
        row = await (await conn.execute(_sql("lock"), key)).fetchone()
        if row is None or row[0] != UploadStatus.RECEIVING or row[1] != row[2] or not path.exists():
            raise Fallback()
        try:
            stored = await asyncio.to_thread(save_finished_file, upload_sessions.incoming_name(key["p"], key["s"]), str(path))
        except Exception:  # storage unreachable (S3's errors are not OSErrors): the view's finish says so
            logger.warning("upload session %s: could not move the file into storage", key["s"], exc_info=True)
            raise Fallback() from None
        queued = await (await conn.execute(_sql("queue"), {
            **key, "queued": UploadStatus.QUEUED.value, "stored": stored, "now": timezone.now()})).fetchone()
    task, queue = outbox.task_of(UploadSession._meta.label)
    if await asyncio.to_thread(outbox.publish, task, args=[key["s"]], queue=queue):
        try:
            await conn.execute(_sql("sent"), key)
        except psycopg.Error:  # sent but not marked: the sweeper sends it again, which is harmless
            logger.warning("upload session %s: could not mark its message sent", key["s"], exc_info=True)
    return queued


def _render(row) -> bytes:
    """UploadSessionSerializer's fields, in its order, from a row of _FIELDS."""
    from rest_framework.renderers import JSONRenderer

    s = dict(zip(_FIELDS, row))
    return JSONRenderer().render({
        "id": s["id"], "file_name": s["file_name"], "size_bytes": s["size_bytes"], "received_bytes": s["received_bytes"],
        "sha256": s["sha256"], "status": s["status"], "result": {"created": [], "duplicates": [], "errors": [], **(s["result"] or {})},
        "chunk_bytes": upload_sessions.CHUNK_BYTES, "created_at": drf_datetime(s["created_at"]), "updated_at": drf_datetime(s["updated_at"]),
    })
