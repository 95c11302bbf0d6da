import os
from urllib.parse import unquote, urlparse

from ..embedded import ensure_postgres


def _from_url(url: str) -> dict:
    parts = urlparse(url)
    return {
        "NAME": parts.path.lstrip("/") or "razmetka",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


_conn = _from_url(os.environ["DATABASE_URL"]) if os.environ.get("DATABASE_URL") else ensure_postgres()
if os.environ.get("RAZMETKA_DB_NAME"):
    # Worker processes started by the test suite point at the suite's test database.
    _conn["NAME"] = os.environ["RAZMETKA_DB_NAME"]
# Web processes (backend/config/asgi.py sets RAZMETKA_DB_POOL=1) keep a small psycopg pool: under
# ASGI every request runs in a thread of its own, so without it each one opened a new PostgreSQL
# connection (a backend fork, 20-30 ms here). Workers, commands and the test process connect as
# before: a pool must never cross a fork (Celery's prefork children), and they need none.
_POOL = os.environ.get("RAZMETKA_DB_POOL") == "1"

_pool_options = {"pool": {
    "min_size": 1,
    "max_size": int(os.environ.get("RAZMETKA_DB_POOL_SIZE", "8")),
    # Waiting longer than this for a connection answers 503 + Retry-After (core/errors.py). Short:
    # while PostgreSQL is down every request waits this long first. Each sync request runs on a
    # thread of its own, so long waits must not hold a connection (interactive clicks give theirs
    # back while they wait for the worker: 16 waiting clicks took all 8 and every other request 503'd).
    "timeout": 3,
    "max_idle": 300,
}} if _POOL else {}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        **_conn,
        "OPTIONS": _pool_options,
        "CONN_MAX_AGE": 0,
        # With the pool: each connection is checked (one empty round trip) as the pool hands it
        # out, so one PostgreSQL dropped (a restart, an idle timeout) is replaced, not a 503.
        "CONN_HEALTH_CHECKS": _POOL,
        "ATOMIC_REQUESTS": False,
        # A test run's worker processes reach the test database through this name.
        "TEST": {"NAME": os.environ.get("RAZMETKA_TEST_DB_NAME", "test_razmetka")},
    }
}
