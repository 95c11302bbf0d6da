"""The Celery app. JSON only on the wire: a pickle payload on the queue is refused."""
import os

from celery import Celery, Task
from celery.result import AsyncResult
from celery.signals import task_prerun, worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")

WORKER_APPLICATION_NAME = "razmetka-worker"
_LATER = object()  # truthy: AsyncResult.__init__ keeps it instead of looking the backend up


class LazyResult(AsyncResult):
    """An AsyncResult that finds its result backend when first used (`.get()`), not when made.

    Celery keeps one backend per thread, and every Django request under ASGI runs in a thread of
    its own, so each task sent from a request built a Redis result backend first: ~10 ms of CPU
    (redis-py reads its package metadata for each), ~12 % of an upload request. Almost every task
    is fire-and-forget; only the ones someone waits on need it."""

    def __init__(self, id, backend=None, **kwargs):
        super().__init__(id, backend=backend or _LATER, **kwargs)

    @property
    def backend(self):
        if self._backend is _LATER:
            self._backend = self.app.backend
        return self._backend

    @backend.setter
    def backend(self, value):
        self._backend = value

    def __del__(self):
        if self.__dict__.get("_backend", _LATER) is not _LATER:  # never used: nothing pending to drop
            super().__del__()


class RazmetkaTask(Task):
    def AsyncResult(self, task_id, **kwargs):  # noqa: N802 (Celery's name)
        # self._backend: a backend set on the task itself; None = the app's, looked up lazily.
        return LazyResult(task_id, backend=self._backend, task_name=self.name, app=self._get_app(), **kwargs)


app = Celery("razmetka", task_cls=RazmetkaTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def start_lease_sweeper(**_):
    # Every worker re-queues job items whose worker died (backend/jobs/sweeper.py).
    from backend.jobs.sweeper import start

    start()


@worker_init.connect
def watch_running_records(**_):
    # Connects the beat of long tasks (exports, imports, evaluations, trainings) before the pool
    # forks; the sweeper fails those whose worker died (backend/core/liveness.py).
    import backend.core.liveness  # noqa: F401


@worker_init.connect
def keep_database_connections(**_):
    """Worker processes keep their PostgreSQL connection between tasks. Celery's Django fixup
    closed it before and after every task (CELERY_DB_REUSE_MAX in settings stops that), so each
    upload and each job batch paid a new connection: a backend fork, ~20 ms here. Runs in the
    main worker process before the pool forks; the children inherit the settings."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    database["CONN_MAX_AGE"] = 600
    database["CONN_HEALTH_CHECKS"] = True
    # Never the web's pool here (an inherited RAZMETKA_DB_POOL=1 would bring it): a pool must not
    # cross the prefork pool's fork, and Django refuses a pool with persistent connections. Named
    # apart from the web's connections in pg_stat_activity (and by the tests).
    options = {k: v for k, v in database.get("OPTIONS", {}).items() if k != "pool"}
    database["OPTIONS"] = {**options, "application_name": WORKER_APPLICATION_NAME}


@worker_init.connect
def yield_the_cpu_to_people(**_):
    """Workers run below the web's CPU priority (nice RAZMETKA_WORKER_NICE, default 10; 0: as
    the web). On a host that runs both (`make run`, one compose host) a drop of 10,000 photos or a
    job on CPU models would otherwise take the cores from the requests people wait on; the work
    itself is queued and loses nothing by waiting. Set in the main worker process before the pool
    forks, so its children inherit it."""
    nice = int(os.environ.get("RAZMETKA_WORKER_NICE", "10") or 0)
    if nice > 0:
        os.nice(nice)


@task_prerun.connect
def check_database_connection(**_):
    """A kept connection PostgreSQL dropped (a restart) is replaced at the task's first query
    instead of failing the task: Django's health check runs once per "request", and a task is one."""
    from django.db import close_old_connections

    close_old_connections()
