from celery import shared_task


@shared_task(name="core.ping", ignore_result=False)
def ping(value: str) -> str:
    """Round trip through the broker and a worker (used by the health check and tests)."""
    return f"pong:{value}"


@shared_task(name="core.delete_files", acks_late=True)
def delete_files(names: list[str]) -> int:
    """Delete stored files (a deleted project's images, thumbnails, gallery, exports, models);
    one already gone is fine. Returns how many were asked for."""
    from .files import delete_stored

    return delete_stored(names)
