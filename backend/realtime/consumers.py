"""One websocket per project. Membership is checked at connect, on resume and whenever it changes.

Every project event carries `seq` (see backlog.py). A client that has seen events up to N
connects with `?since=N` (or sends `{"type": "resume", "since": N}`) and gets the events after
N from the backlog, then live ones; when the backlog cannot cover N it gets `resync` instead
and reloads what it shows. The README's "Live updates" paragraph is the protocol's reference.
"""
from __future__ import annotations

import asyncio
import json
import logging
import weakref
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from backend.core.events import project_group, user_group
from backend.projects.models import Membership

from . import backlog, socket_quota

logger = logging.getLogger("razmetka.realtime")

# Clients send pings and resumes, a few dozen bytes; anything near this is not our client.
MAX_MESSAGE_CHARS = 4096
CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"
CLOSE_FORBIDDEN = 4403
# Not signed in, or the session ended (signed out in another tab): the page asks to sign in
# again; a 4403 there said "you were removed from this project", which was untrue.
CLOSE_SIGNED_OUT = 4401
# The user holds socket_quota.limit() sockets already (tabs): the app says so instead of retrying.
CLOSE_TOO_MANY = 4429

# Channel-layer calls (group add/discard) one web process runs at once. Its Redis pool holds 100
# connections and raised "Too many connections" when thousands of sockets closed together: each
# failed discard left a dead channel in the project's group for a day.
LAYER_CALLS_AT_ONCE = 32
_layer_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layer_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _layer_slots:
        _layer_slots[loop] = asyncio.Semaphore(LAYER_CALLS_AT_ONCE)
    return _layer_slots[loop]


@database_sync_to_async
def _is_member(user, project_id: int) -> bool:
    """A member who has set their own password: one still on a one-time password gets 403 from
    every REST call, and the live events would tell them what those refuse."""
    from backend.core.accounts import must_change_password

    return bool(user and user.is_authenticated and Membership.objects.filter(user=user, project_id=project_id).exists()
                and not must_change_password(user))


def _seq_arg(value) -> int | None:
    """A client-sent seq: a non-negative integer, or None when it is anything else."""
    # The length cap: int() refuses more than 4,300 digits (a ValueError that dropped the socket);
    # a real seq is far shorter than 20, and anything longer is as unusable as "x1".
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        self.user = self.scope.get("user")
        # Live events at or below this seq were already sent by a replay (or precede `hello`).
        self.floor = 0
        if not (self.user and self.user.is_authenticated):
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        if not await _is_member(self.user, self.project_id):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await asyncio.to_thread(socket_quota.take, self.user.pk, self.channel_name):
            await self.accept()  # accepted first, so the browser sees the code (a refused handshake has none)
            await self.close(code=CLOSE_TOO_MANY, reason=f"at most {socket_quota.limit()} live connections per user")
            return
        self.counted = True
        self.renewal = asyncio.create_task(self._renew_count())
        # Join before reading the backlog: an event is then either in the backlog read or
        # arrives live after it (and the floor drops it if it was both).
        self.groups_joined = [project_group(self.project_id), user_group(self.user.pk)]
        for group in self.groups_joined:
            async with _layer_slot():
                await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if "since" not in query:
            seq = await asyncio.to_thread(backlog.current, self.project_id)
            self.floor = seq
            await self.send_json({"type": "hello", "project": self.project_id, "seq": seq})
            return
        await self._catch_up(_seq_arg(query["since"][0]), hello=True)

    async def _catch_up(self, since: int | None, *, hello: bool = False) -> None:
        if since is None:
            catchup = backlog.Catchup(await asyncio.to_thread(backlog.current, self.project_id), None)
        else:
            catchup = await asyncio.to_thread(backlog.since, self.project_id, since)
        if hello:
            await self.send_json({"type": "hello", "project": self.project_id, "seq": catchup.seq})
        if catchup.events is None:
            await self.send_json({"type": "resync", "project": self.project_id, "seq": catchup.seq})
        else:
            for event in catchup.events:
                await self.send_json(event)
        self.floor = max(self.floor, catchup.seq)

    # Set once this side sent its close or the client left. A frame after that (an event already
    # on its way, the rest of a batch) made uvicorn log "Unexpected ASGI message 'websocket.send',
    # after sending 'websocket.close'" as an exception in the application.
    closing = False

    async def close(self, code=None, reason=None):
        if not self.closing:
            self.closing = True
            await super().close(code=code, reason=reason)

    async def send(self, text_data=None, bytes_data=None, close=False):
        if not self.closing:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def send_json(self, content, close=False):  # Channels' own calls the base send, not ours
        if not self.closing:
            await super().send_json(content, close=close)

    counted = False
    renewal = None

    async def disconnect(self, code):
        self.closing = True
        if self.renewal is not None:
            self.renewal.cancel()
        for group in getattr(self, "groups_joined", []):
            await self._leave(group)
        if self.counted:
            try:
                await asyncio.to_thread(socket_quota.give_back, self.user.pk, self.channel_name)
            except Exception as exc:  # Redis down: the entry lapses by itself (socket_quota.ENTRY_TTL_S)
                logger.warning("live socket of user %s not uncounted: %r", self.user.pk, exc)

    async def _leave(self, group: str) -> None:
        """group_discard, tried again when Redis is busy or briefly away: a channel left in the
        group receives the project's every event until the group expires (a day)."""
        for pause in (0.2, 1.0, None):
            try:
                async with _layer_slot():
                    await self.channel_layer.group_discard(group, self.channel_name)
                return
            except Exception as exc:
                if pause is None:
                    logger.warning("could not leave live group %s: %r", group, exc)
                    return
                await asyncio.sleep(pause)

    async def _renew_count(self) -> None:
        while True:
            await asyncio.sleep(socket_quota.RENEW_S)
            try:
                await asyncio.to_thread(socket_quota.take, self.user.pk, self.channel_name)
            except Exception as exc:  # Redis down now: the next renewal counts it again
                logger.warning("live socket count not renewed: %r", exc)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Whatever a client sends, the socket answers with an error (or a clear close), never a crash.
        if text_data is None:
            await self._error("send JSON text frames, not binary ones")
            return
        if len(text_data) > MAX_MESSAGE_CHARS:
            await self.close(code=CLOSE_TOO_BIG, reason=f"messages are limited to {MAX_MESSAGE_CHARS} characters")
            return
        try:
            content = json.loads(text_data)
        except RecursionError:  # "[[[[...": 4,000 characters nest deeper than the parser's stack
            await self._error("the message nests too deeply")
            return
        except ValueError:
            await self._error("the message is not valid JSON")
            return
        if not isinstance(content, dict):
            await self._error('a message is a JSON object with a "type"')
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "resume":
            since = _seq_arg(content.get("since"))
            if since is None:
                await self._error('"since" must be a non-negative integer seq')
            elif await self._still_member():
                await self._catch_up(since)
        else:
            await self._error(f"unknown message type {str(kind)[:40]!r}")

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "error": message})

    async def _still_member(self) -> bool:
        if await _is_member(self.user, self.project_id):
            return True
        await self.send_json({"type": "access.revoked", "project": self.project_id})
        await self.close(code=CLOSE_FORBIDDEN)
        return False

    async def event_batch(self, event):
        """Several events sent as one channel-layer message (core/events.py): each goes out as its own frame."""
        for payload in event["payloads"]:
            await self._forward(payload)

    async def event_message(self, event):
        await self._forward(event["payload"])

    async def _forward(self, payload: dict) -> None:
        if payload.get("type") == "session.ended":
            session = self.scope.get("session")
            if payload.get("session") in (None, getattr(session, "session_key", None)):
                await self.close(code=CLOSE_SIGNED_OUT)
            return
        if payload.get("type") == "membership.changed":
            # Still a member: the role may have changed, and the page reloads it (a demoted
            # reviewer's open workspace kept offering accept and reject).
            if payload.get("project") == self.project_id and await self._still_member():
                await self.send_json({"type": "membership.changed", "project": self.project_id})
            return
        seq = payload.get("seq")
        if isinstance(seq, int) and seq <= self.floor:
            return  # already sent by a replay
        await self.send_json(payload)


class NoRoute(AsyncJsonWebsocketConsumer):
    """Any other WebSocket path (/ws/projects/abc/, /ws/x): the handshake is refused (HTTP 403),
    where Channels' router raised and the server answered 500."""

    async def connect(self):
        await self.close()
