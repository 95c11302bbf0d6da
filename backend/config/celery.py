"""The Celery app. JSON only on the wire: a pickle payload on the queue is refused."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")

app = Celery("razmetka")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
