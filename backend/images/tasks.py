from celery import shared_task


@shared_task(name="images.process_upload", acks_late=True)
def process_upload_task(session_id: int) -> None:
    """Decode, hash, dedup, store and thumbnail one uploaded file (cpu queue). Re-running it is
    safe: the session is claimed once, and (project, sha256) is unique for images."""
    from .upload_sessions import process_session, sweep_stale_sessions

    process_session(session_id)
    sweep_stale_sessions()  # an indexed query: cheap enough to ride along with every upload
