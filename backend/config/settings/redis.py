"""Redis-backed integrations: the Celery broker/result backend and the Channels layer."""
import os

from ..embedded import ensure_redis
from .env import env_int

REDIS_URL = os.environ.get("REDIS_URL") or ensure_redis()


def _kombu_url(url: str) -> str:
    # kombu spells a unix socket "redis+socket://"; redis-py and channels-redis spell it "unix://".
    return "redis+socket://" + url[len("unix://"):] if url.startswith("unix://") else url


# Celery: JSON only, late acks, and a visibility timeout well above the hard time limit so a
# slow task is never handed to a second worker while the first still runs it.
CELERY_BROKER_URL = _kombu_url(REDIS_URL)
CELERY_RESULT_BACKEND = _kombu_url(REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Queue names carry a prefix so a test run never feeds a `make run` worker on the same Redis.
QUEUE_PREFIX = os.environ.get("RAZMETKA_QUEUE_PREFIX", "")
QUEUE_CPU = f"{QUEUE_PREFIX}cpu"
QUEUE_GPU = f"{QUEUE_PREFIX}gpu"
# A person waits on these (box-segment, click-refine): their own worker answers them while the
# gpu worker runs a training or a job for minutes; an idle gpu worker takes them too.
QUEUE_INTERACTIVE = f"{QUEUE_PREFIX}interactive"
CELERY_TASK_DEFAULT_QUEUE = QUEUE_CPU
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT * 2,
    # How often a worker looks for messages whose worker died (kill -9) to hand them out again.
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
CELERY_RESULT_EXPIRES = 3600
# Only the tasks someone waits on (the health check's ping, interactive SAM) keep a result; they
# say so with ignore_result=False. For the rest nobody reads one, and asking for it cost the web
# request that sends the task a new result backend per thread (redis-py parses its package
# metadata each time: ~12 % of an upload request's CPU) and Redis a stored result per task.
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection around every task unless this is set; the
# worker keeps it instead (backend/config/celery.py: CONN_MAX_AGE + a health check per task).
CELERY_DB_REUSE_MAX = 10_000
# Job leases (backend/jobs/leases.py): a worker holds each image of its batch for
# JOB_LEASE_SECONDS and renews that every JOB_HEARTBEAT_SECONDS; every worker sweeps expired
# leases every JOB_SWEEP_SECONDS and re-queues them. Work held by a dead worker thus comes back
# in under a minute, not after the visibility timeout above. 0 sweep seconds: no sweeper.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 30)
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 10)
JOB_SWEEP_SECONDS = env_int("JOB_SWEEP_SECONDS", 15)
# Tests only: seconds a worker waits before writing each image, so a batch can outlive its lease.
JOB_TEST_ITEM_DELAY_S = float(os.environ.get("JOB_TEST_ITEM_DELAY_S") or 0)


def _channel_layer_host(url: str) -> dict:
    """Connection settings for the Channels layer: no socket read timeout.

    The layer's receive is a blocking BZPOPMIN of `brpop_timeout` (5 s). redis-py 8 reads with a
    5 s socket timeout by default, so an idle socket's receive raced the server's empty reply and
    raised TimeoutError, killing the websocket every ~5 s. Any finite timeout is also wrong on
    Python 3.11: redis-py then sends through asyncio.wait_for, which can swallow a cancellation,
    so a closed socket's receive task kept polling Redis forever. channels-redis was written for
    redis-py's old default, None; the server's BZPOPMIN timeout bounds every read anyway. A
    `socket_timeout` in the URL would override ours (redis-py lets the URL win), so it is lifted.
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if any(key == "socket_timeout" for key, _ in query):
        url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "socket_timeout"])))
    return {"address": url, "socket_timeout": None, "socket_connect_timeout": 5}


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_channel_layer_host(REDIS_URL)], "prefix": f"{QUEUE_PREFIX}razmetka"},
    }
}

# Django's cache (DRF's throttles, the per-account sign-in lockout) in Redis: shared by every web
# process, where the default per-process memory let each of N processes count on its own. Keys
# carry the queue prefix, so a test run never meets a running app's counters.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"razmetka{QUEUE_PREFIX}",
    }
}

# Live sockets one user may hold at once, across web processes (realtime/socket_quota.py): a tab
# per project page is one; a flood of thousands degraded every member's live events for a day.
LIVE_SOCKETS_PER_USER = int(os.environ.get("RAZMETKA_LIVE_SOCKETS_PER_USER", "50"))
