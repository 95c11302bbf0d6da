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
