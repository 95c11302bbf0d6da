"""Live events to project websockets. Only services call these, and sending waits for commit.

Events leave through one background thread per process (`Publisher`), in the order they were
committed: a write answers without waiting for Redis and the channel layer (about 15 ms per
event through async_to_sync), and the thread keeps one event loop, so the channel layer's
connections are reused instead of opened per event. Events that queue up while one is sent
leave together: one backlog call and one channel-layer message per run of a project's events.
"""
from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import os
import queue
import threading
import time

from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger("razmetka.events")


def project_group(project_id: int) -> str:
    return f"project-{project_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


class Publisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def put(self, project_id: int | None, group: str, payload: dict) -> None:
        if self._pid != os.getpid():  # first use, or a forked child (Celery's pool): own thread
            self._start()
        self._queue.put((project_id, group, payload))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything put so far has been sent (tests, process exit)."""
        if self._pid != os.getpid():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.SimpleQueue()
            self._pid = os.getpid()
            threading.Thread(target=self._run, args=(self._queue,), name="live-events", daemon=True).start()

    def _run(self, inbox: queue.SimpleQueue) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while True:
            items = [inbox.get()]
            if not isinstance(items[0], threading.Event):
                # Whatever else arrives meanwhile goes out with it: under load one Redis call
                # numbers a run of events and one channel-layer message carries them (~0.8 ms of
                # CPU per event sent alone). Live events may be this much later; order is kept:
                # runs are consecutive items.
                time.sleep(LINGER_S)
            while len(items) < BATCH_MAX:
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            # Runs of consecutive events for one (project, group); a flush marker is a run of its own.
            for key, run in itertools.groupby(items, key=lambda i: i if isinstance(i, threading.Event) else i[:2]):
                if isinstance(key, threading.Event):
                    key.set()
                    continue
                project_id, group = key
                payloads = [payload for _, _, payload in run]
                try:
                    loop.run_until_complete(_deliver(project_id, group, payloads))
                except Exception as exc:  # a down Redis or channel layer must never stop later events
                    logger.warning("could not send live event(s) %s: %s: %s", sorted({p.get("type") for p in payloads}),
                                   type(exc).__name__, exc)


BATCH_MAX = 200
LINGER_S = 0.01


async def _deliver(project_id: int | None, group: str, payloads: list[dict]) -> None:
    from channels.layers import get_channel_layer

    if project_id is not None:
        from backend.realtime import backlog

        try:
            # Numbered and kept before they go out, so a client that misses one live can ask for it.
            seqs = backlog.append_many(project_id, payloads)
            payloads = [{**payload, "seq": seq} for payload, seq in zip(payloads, seqs)]
        except Exception as exc:  # sent without a seq still beats not sent; the write is committed either way
            # One line, not a traceback per write: a Redis outage filled the log with them.
            logger.warning("could not number live events %s: %s: %s", sorted({p.get("type") for p in payloads}),
                           type(exc).__name__, exc)
    layer = get_channel_layer()
    if layer is None:
        return
    if len(payloads) == 1:
        message = {"type": "event.message", "payload": payloads[0]}
    else:  # the consumer sends them one by one, in order (realtime/consumers.py event_batch)
        message = {"type": "event.batch", "payloads": payloads}
    try:
        await layer.group_send(group, message)
    except RedisConnectionError:
        # A pooled connection that Redis dropped (a restart) fails its first use, which lost the
        # first event after every restart; the pool opens a fresh one for the second try. A
        # repeat is harmless: clients drop events at or below the seq they have.
        logger.info("live event(s) met a dropped Redis connection; sending again")
        await layer.group_send(group, message)


publisher = Publisher()
atexit.register(publisher.flush, 2.0)


def _publish(project_id: int, payload: dict) -> None:
    publisher.put(project_id, project_group(project_id), payload)


def emit(project_id: int, event_type: str, **data) -> None:
    payload = {"type": event_type, "project": project_id, **data}
    transaction.on_commit(lambda: _publish(project_id, payload))


def emit_now(project_id: int, event_type: str, **data) -> None:
    """Send at once, even inside a transaction: only for progress notices that describe no
    row (a long import reports its batches while its one transaction is still open)."""
    _publish(project_id, {"type": event_type, "project": project_id, **data})


def signed_out(*, user_id: int, session_key: str | None = None) -> None:
    """Close the user's live sockets: those of `session_key` (a sign-out), or all (a new password,
    which ends the other sessions; the one that changed it reconnects). They kept streaming."""
    payload = {"type": "session.ended", "session": session_key}
    transaction.on_commit(lambda: publisher.put(None, user_group(user_id), payload))


def membership_changed(*, project_id: int, user_id: int) -> None:
    payload = {"type": "membership.changed", "project": project_id}
    transaction.on_commit(lambda: publisher.put(None, user_group(user_id), payload))


def project_deleted(*, project_id: int, user_ids: list[int], by: str | None) -> None:
    """Tell every member's open pages that the project is gone and who deleted it, then close their
    sockets of it (membership.changed: the consumer re-checks, finds no membership, answers
    access.revoked and closes with 4403). Sent to each member's own group: the project's group has
    no backlog to number events in once the project is gone."""
    deleted = {"type": "project.deleted", "project": project_id, "by": by}
    revoked = {"type": "membership.changed", "project": project_id}

    def send() -> None:
        for user_id in user_ids:
            publisher.put(None, user_group(user_id), deleted)
            publisher.put(None, user_group(user_id), revoked)

    transaction.on_commit(send)
