"""One lazily created Redis client per process for the app's own small keys (proposals, the
live-event backlog). Short timeouts: a request waits at most ~2 s for a Redis that is down."""
from __future__ import annotations

import threading

import redis
from django.conf import settings

_client: redis.Redis | None = None
_lock = threading.Lock()


def shared() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        return _client
