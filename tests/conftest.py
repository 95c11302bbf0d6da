import os
import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_models_config(tmp_path_factory):
    """Tiny random-weight models for every stage, written once per run through ml's own builder."""
    from ml.tiny import build_tiny_models

    return str(build_tiny_models(tmp_path_factory.mktemp("tiny-models")))


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tiny_models_config):
    """A real Celery worker process on the embedded Redis and the test database, listening on
    both queues, with the tiny models configured (a pre-annotation job really runs the pipeline)."""
    from .worker import start_worker, stop_worker

    proc = start_worker(extra_env={"RAZMETKA_ML_CONFIG": tiny_models_config})
    _SESSION_WORKER.append(proc)
    yield proc
    _SESSION_WORKER.clear()
    stop_worker(proc)


_SESSION_WORKER: list = []


def _flushes(request) -> bool:
    """pytest-django's own rule for a test whose database is emptied by TRUNCATE afterwards."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return False
    names = request.fixturenames
    return bool(marker.kwargs.get("transaction") or (len(marker.args) > 0 and marker.args[0])
                or "transactional_db" in names or "live_server" in names)


@pytest.fixture(autouse=True)
def worker_idle_before_flush(request):
    """Tasks a test left queued (a re-scoring sent on commit, say) finish before the test database
    is flushed: a worker mid-task holds locks the flush's TRUNCATE waits on, and PostgreSQL then
    reports a deadlock. The worker runs one task at a time in queue order, so a ping sent to each
    of its queues comes back only after what was queued before it.

    The session's worker serves every later test too, so a test that never asked for it (one that
    queues an upload task through a hot route, say) is waited for as well once it is running."""
    asked = "celery_worker" in request.fixturenames and request.node.get_closest_marker("django_db")
    serving = _flushes(request) and _SESSION_WORKER and _SESSION_WORKER[0].poll() is None
    if not (asked or serving):
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up first, so this tears down before the flush
    yield
    from django.conf import settings

    from backend.core.tasks import ping

    for queue in (settings.QUEUE_CPU, settings.QUEUE_GPU):
        try:
            ping.apply_async(args=["idle"], queue=queue).get(timeout=120)
        except Exception:  # a test that stopped the worker: nothing left to wait for
            pass


def pytest_sessionfinish(session, exitstatus):
    media = os.environ.get("MEDIA_ROOT", "")
    if "razmetka-test-media-" in media:
        shutil.rmtree(media, ignore_errors=True)
    # In CI the embedded servers belong to this run's clone: stop them so nothing outlives it.
    if os.environ.get("CI") and not os.environ.get("DATABASE_URL"):
        from backend.config.embedded import stop_all

        stop_all()
