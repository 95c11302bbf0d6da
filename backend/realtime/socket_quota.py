"""How many live sockets one user holds, across every web process (Redis).

One viewer opened 6,000 sockets twice: when they closed together the channel layer ran out of
connections, thousands of group memberships were never removed, and every later event of the
project went to each dead channel for a day. A user gets LIVE_SOCKETS_PER_USER sockets (tabs);
the next is refused with a close code the app explains.

Each socket's entry carries an expiry that the socket renews while open (`RENEW_S`), so entries
of a web process that died (no disconnect ran) lapse on their own instead of using up the quota.
"""
from __future__ import annotations

import time

from django.conf import settings

from backend.core import redis_client

ENTRY_TTL_S = 15 * 60
RENEW_S = 5 * 60

# KEYS[1]: the user's sorted set (member: channel name, score: expiry). ARGV: now, expiry, channel,
# limit. Returns 1 when the socket may stay (also when it is already counted), else 0.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) - tonumber(ARGV[1]) + 60)
return 1
"""

_script = None


def _key(user_id: int) -> str:
    return f"{settings.QUEUE_PREFIX}razmetka:live:sockets:{user_id}"


def take(user_id: int, channel: str) -> bool:
    """Count this socket for the user (or renew it); False when the user is at the limit."""
    global _script
    client = redis_client.shared()
    if _script is None:
        _script = client.register_script(_TAKE)
    now = time.time()
    return bool(_script(keys=[_key(user_id)], args=[now, now + ENTRY_TTL_S, channel, limit()]))


def give_back(user_id: int, channel: str) -> None:
    redis_client.shared().zrem(_key(user_id), channel)


def limit() -> int:
    return int(settings.LIVE_SOCKETS_PER_USER)
