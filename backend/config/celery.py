"""The Celery app. JSON only on the wire: a pickle payload on the queue is refused."""
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")

app = Celery("razmetka")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def start_lease_sweeper(**_):
    # Every worker re-queues job items whose worker died (backend/jobs/sweeper.py).
    from backend.jobs.sweeper import start

    start()
