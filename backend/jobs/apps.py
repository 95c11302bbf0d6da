from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "backend.jobs"
    label = "jobs"

    def ready(self):
        from backend.gallery import hooks

        from . import interactive  # noqa: F401  registers jobs.segment_box_match with Celery
        from .tasks import schedule_gallery_refresh

        hooks.on_gallery_changed(schedule_gallery_refresh)
