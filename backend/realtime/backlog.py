"""Each project's recent live events in Redis, numbered, so a reconnecting client can catch up.

Per project there are two keys: a counter (the last `seq` handed out) and a sorted set of the
last `SIZE` events scored by seq. A Lua script bumps the counter and appends the events in one
step, so every seq a client can see is already in the backlog when it is sent live.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from backend.core import redis_client
from django.conf import settings

SIZE = 1000  # events kept per project
TTL_S = 24 * 3600  # an idle project's backlog (and counter) goes after a day

# A missing counter starts from the clock (ms), not 0: if Redis loses it (flush, restart without
# persistence, TTL), new seqs still land above every seq a client holds, so clients notice
# (resume answers `resync`) instead of dropping fresh events as already seen.
_SEED = "if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end"

# Events of one project in one call: their seqs are consecutive, the first is returned.
_APPEND_MANY = _SEED + """
local first = redis.call('INCRBY', KEYS[1], #ARGV - 3) - (#ARGV - 4)
for i = 4, #ARGV do
  local seq = first + i - 4
  redis.call('ZADD', KEYS[2], seq, string.format('%d:', seq) .. ARGV[i])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return first
"""

# One snapshot: the current seq, the oldest kept seq (0: none) and the kept events after ARGV[3].
_SINCE = _SEED + """
local seq = tonumber(redis.call('GET', KEYS[1]))
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local after = {}
if ARGV[3] ~= '' then after = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[3], '+inf') end
return {seq, tonumber(oldest[2] or '0'), after}
"""

_scripts: dict = {}
_lock = threading.Lock()


def _run(script: str, project_id: int, *args):
    with _lock:
        if not _scripts:
            client = redis_client.shared()  # short timeouts: a committed write waits ≤ ~2 s for a down Redis
            _scripts.update(append_many=client.register_script(_APPEND_MANY), since=client.register_script(_SINCE))
    return _scripts[script](keys=_keys(project_id), args=[int(time.time() * 1000), TTL_S, *args])


def _keys(project_id: int) -> tuple[str, str]:
    base = f"{settings.QUEUE_PREFIX}razmetka:live:{project_id}"
    return f"{base}:seq", f"{base}:log"


def append(project_id: int, payload: dict) -> int:
    """Number the event and keep it in the project's backlog; returns its seq."""
    return append_many(project_id, [payload])[0]


def append_many(project_id: int, payloads: list[dict]) -> list[int]:
    """Number and keep several events at once (one Redis call); their seqs, in order."""
    if not payloads:
        return []
    first = int(_run("append_many", project_id, SIZE, *(json.dumps(p, separators=(",", ":")) for p in payloads)))
    return list(range(first, first + len(payloads)))


@dataclass(frozen=True)
class Catchup:
    seq: int  # the project's current seq
    events: list[dict] | None  # every event after `since`, oldest first; None: the backlog can't tell


def current(project_id: int) -> int:
    """The project's current seq (the last one handed out, or the counter's fresh start)."""
    return since(project_id, None).seq


def since(project_id: int, after: int | None) -> Catchup:
    """The events a client that has seen everything up to `after` missed, read in one snapshot."""
    seq, oldest, entries = _run("since", project_id, "" if after is None else after)
    if after is None or after == seq:
        return Catchup(seq, [])
    # `after` from the future: the counter was lost and restarted. Older than the backlog (or no
    # backlog at all): events were trimmed or lost. Either way only a full reload is right.
    if after > seq or not oldest or oldest > after + 1:
        return Catchup(seq, None)
    events = []
    for entry in entries:
        number, _, body = entry.decode().partition(":")
        events.append({**json.loads(body), "seq": int(number)})
    return Catchup(seq, events)
