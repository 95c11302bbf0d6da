import os
import shutil

import pytest


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker process on the embedded Redis, on the test database (both queues)."""
    from .worker import start_worker, stop_worker

    proc = start_worker()
    yield proc
    stop_worker(proc)


def pytest_sessionfinish(session, exitstatus):
    media = os.environ.get("MEDIA_ROOT", "")
    if "razmetka-test-media-" in media:
        shutil.rmtree(media, ignore_errors=True)
    # In CI the embedded servers belong to this run's clone: stop them so nothing outlives it.
    if os.environ.get("CI") and not os.environ.get("DATABASE_URL"):
        from backend.config.embedded import stop_all

        stop_all()
