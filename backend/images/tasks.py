import time

from celery import shared_task

from backend.core.task_retry import run_or_retry

SWEEP_EVERY_S = 60.0
_last_sweep = [float("-inf")]


@shared_task(name="images.process_upload", acks_late=True, bind=True, max_retries=None)
def process_upload_task(self, session_id: int) -> None:
    """Decode, hash, dedup, store and thumbnail one uploaded file (cpu queue). Re-running it is
    safe: the session is claimed once, and (project, sha256) is unique for images.

    While the database is down the task is sent again every 5 s (core/task_retry.py); its retry
    takes back the session its first run left "processing"."""
    from .upload_sessions import process_session, sweep_stale_sessions

    run_or_retry(self, process_session, session_id, resume=self.request.retries > 0)
    # Abandoned sessions are a day old before they go: once a minute per worker process is
    # plenty (once per upload was a query per photo in a 10,000-photo upload).
    if time.monotonic() - _last_sweep[0] >= SWEEP_EVERY_S:
        _last_sweep[0] = time.monotonic()
        sweep_stale_sessions()
