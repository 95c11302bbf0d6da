"""GET /api/health/: is this web process able to reach its database and Redis? (for healthchecks)

Anonymous and cheap. Answers 503 when a dependency is down; the response names only which one
and the error's type, the details go to the log.
"""
import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("razmetka.health")


def _check_db() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


@never_cache
@require_GET
def health_view(request):
    body, healthy = {}, True
    for name, check in (("db", _check_db), ("redis", _check_redis)):
        try:
            check()
            body[name] = "ok"
        except Exception as exc:  # any failure means "not healthy", whatever the driver raises
            logger.warning("health check: %s is down: %s", name, exc)
            body[name] = f"error ({type(exc).__name__})"
            healthy = False
    body["status"] = "ok" if healthy else "error"
    return JsonResponse(body, status=200 if healthy else 503)
