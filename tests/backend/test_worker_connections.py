"""Worker processes keep their PostgreSQL connection between tasks, and replace one that
PostgreSQL dropped instead of failing the task that finds it dead."""
import os
import time

import pytest
from django.db import connection

from backend.config.celery import WORKER_APPLICATION_NAME
from backend.images.models import UploadSession

from ..worker import start_worker, stop_worker
from .factories import make_project, make_user
from .test_chunked_uploads import noisy_jpeg, send_all

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _processed(client, project, name: str, seed: int) -> str:
    sid = send_all(client, project, name, noisy_jpeg(seed), chunk=8000)["id"]
    deadline = time.monotonic() + 60
    while (status := UploadSession.objects.get(pk=sid).status) not in ("done", "failed"):
        assert time.monotonic() < deadline, "the worker did not process the upload"
        time.sleep(0.1)
    return status


def _worker_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
                       [WORKER_APPLICATION_NAME])
        return {pid for (pid,) in cursor.fetchall()}


def test_the_worker_keeps_its_connection_and_replaces_a_dropped_one(settings, client_for):
    """Regression: Celery's Django fixup closed the connection before and after every task, so
    each upload and each job batch opened a new one (a PostgreSQL backend fork, ~20 ms here).
    The worker inherits RAZMETKA_DB_POOL=1 here, as from a test process that imported the ASGI
    app or an environment shared with the web: the web's pool must not come along (Django
    refuses a pool with kept connections; every task failed)."""
    prefix = f"keepconn{os.getpid()}-{time.monotonic_ns()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    owner = make_user("kept-connection")
    project = make_project(owner)
    client = client_for(owner)
    worker = start_worker(queues=[settings.QUEUE_CPU], name="keep-connection",
                          extra_env={"RAZMETKA_QUEUE_PREFIX": prefix, "RAZMETKA_DB_POOL": "1"})
    try:
        assert _processed(client, project, "a.jpg", 1) == "done"
        after_first = _worker_backends()
        assert after_first, "the worker's connection stays open after its task"
        assert _processed(client, project, "b.jpg", 2) == "done"
        kept = after_first & _worker_backends()
        assert kept, "the second task ran on the first task's connection"

        # PostgreSQL drops it (a restart, an idle timeout): the next task gets a new one and succeeds.
        with connection.cursor() as cursor:
            for pid in kept:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert _processed(client, project, "c.jpg", 3) == "done"
        assert _worker_backends() - kept, "a new connection replaced the dropped one"
    finally:
        stop_worker(worker)


def test_workers_run_below_the_webs_cpu_priority(celery_worker):
    """On a host that runs both, queued work (a drop of photos, a job on CPU models) must not take
    the cores from the requests people wait on: a worker runs at nice 10 (set before a prefork
    pool forks, so its children inherit it; the test worker runs tasks in its own process)."""
    import psutil

    worker = psutil.Process(celery_worker.pid)
    processes = [worker, *worker.children(recursive=True)]
    assert {proc.nice() for proc in processes} == {os.getpriority(os.PRIO_PROCESS, 0) + 10}
