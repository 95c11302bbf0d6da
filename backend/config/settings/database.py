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
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        **_conn,
        "CONN_MAX_AGE": 0,
        "ATOMIC_REQUESTS": False,
        # A test run's worker processes reach the test database through this name.
        "TEST": {"NAME": os.environ.get("RAZMETKA_TEST_DB_NAME", "test_razmetka")},
    }
}
