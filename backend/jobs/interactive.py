"""Interactive SAM 2 for the browser: the request waits for the gpu worker, with a deadline."""
from __future__ import annotations

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

from backend.core.errors import DomainError
from backend.core.geometry import validate_box

SEGMENT_TIMEOUT_S = 30


class SegmentUnavailable(DomainError):
    status_code = 503
    code = "segment_unavailable"


def segment_box_now(*, image, box: list[float]) -> dict:
    x0, y0, x1, y1 = validate_box(box, height=image.height, width=image.width, field="box")
    from .tasks import segment_box

    result = segment_box.apply_async(args=[image.pk, [x0, y0, x1, y1]], queue=settings.QUEUE_GPU)
    try:
        return result.get(timeout=SEGMENT_TIMEOUT_S, propagate=True)
    except CeleryTimeout:
        result.revoke()
        raise SegmentUnavailable("The segmentation worker did not answer in time; is the gpu worker running?") from None
    except Exception as exc:
        raise SegmentUnavailable(f"Segmentation failed: {exc}") from None
