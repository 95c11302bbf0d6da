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
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL}], "prefix": f"{QUEUE_PREFIX}razmetka"},
    }
}
