from celery import shared_task


@shared_task(name="core.ping", ignore_result=False)
def ping(value: str) -> str:
    """Round trip through the broker and a worker (used by the health check and tests)."""
    return f"pong:{value}"
