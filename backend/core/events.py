"""Live events to project websockets. Only services call these, and sending waits for commit."""
from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger("razmetka.events")


def project_group(project_id: int) -> str:
    return f"project-{project_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def _send(group: str, payload: dict) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "event.message", "payload": payload})
    except Exception:  # a down channel layer must never fail a committed write
        logger.exception("could not send live event %s", payload.get("type"))


def _publish(project_id: int, payload: dict) -> None:
    from backend.realtime import backlog

    try:
        # Numbered and kept before it goes out, so a client that misses it live can ask for it.
        payload = {**payload, "seq": backlog.append(project_id, payload)}
    except Exception:  # sent without a seq still beats not sent; the write is committed either way
        logger.exception("could not number live event %s", payload.get("type"))
    _send(project_group(project_id), payload)


def emit(project_id: int, event_type: str, **data) -> None:
    payload = {"type": event_type, "project": project_id, **data}
    transaction.on_commit(lambda: _publish(project_id, payload))


def emit_now(project_id: int, event_type: str, **data) -> None:
    """Send at once, even inside a transaction: only for progress notices that describe no
    row (a long import reports its batches while its one transaction is still open)."""
    _publish(project_id, {"type": event_type, "project": project_id, **data})


def membership_changed(*, project_id: int, user_id: int) -> None:
    payload = {"type": "membership.changed", "project": project_id}
    transaction.on_commit(lambda: _send(user_group(user_id), payload))
