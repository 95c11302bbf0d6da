import time

from celery import shared_task

SWEEP_EVERY_S = 60.0
_last_sweep = [float("-inf")]


@shared_task(name="images.process_upload", acks_late=True)
def process_upload_task(session_id: int) -> None:
    """Decode, hash, dedup, store and thumbnail one uploaded file (cpu queue). Re-running it is
    safe: the session is claimed once, and (project, sha256) is unique for images."""
    from .upload_sessions import process_session, sweep_stale_sessions

    process_session(session_id)
    # Abandoned sessions are a day old before they go: once a minute per worker process is
    # plenty (once per upload was a query per photo in a 10,000-photo upload).
    if time.monotonic() - _last_sweep[0] >= SWEEP_EVERY_S:
        _last_sweep[0] = time.monotonic()
        sweep_stale_sessions()
