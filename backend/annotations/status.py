"""An image's review status is derived from its annotations; only the aggregate's writer calls this."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Q
from django.db.models.functions import Now

from backend.core import events
from backend.images.models import Image, ImageStatus

from .models import Annotation, ReviewState, Source

_PENDING = ReviewState.PENDING
# Settled: both parts decided. Started: anything a person did (an annotator's edit stays pending
# review but is started work), or any decision.
_SETTLED = ~Q(class_review=_PENDING) & ~Q(mask_review=_PENDING)
_STARTED = ~Q(class_review=_PENDING) | ~Q(mask_review=_PENDING) | Q(source=Source.HUMAN) | Q(updated_by__isnull=False)


def derive(current: str, *, total: int, settled: int, started: int, examined: bool = False) -> str:
    if total == 0:
        # Nothing on it: a model that looked moves it on from "new"; otherwise it keeps its status.
        return ImageStatus.PRELABELED if examined and current == ImageStatus.NEW else current
    if settled == total:
        return ImageStatus.DONE
    if started:
        return ImageStatus.IN_REVIEW
    return ImageStatus.PRELABELED


def refresh_statuses(image_ids: Iterable[int], *, examined: set[int] = frozenset()) -> None:
    """Re-derive the status of these images in a few statements (call inside the writing
    transaction); a changed status bumps the image's version and is announced live."""
    ids = list(image_ids)
    for start in range(0, len(ids), 1_000):
        _refresh(ids[start:start + 1_000], examined)


def _refresh(ids: list[int], examined: set[int]) -> None:
    counts = {
        row["image_id"]: row for row in Annotation.objects.filter(image_id__in=ids).values("image_id").annotate(
            total=Count("id"), settled=Count("id", filter=_SETTLED), started=Count("id", filter=_STARTED),
        )
    }
    moves: dict[str, list[int]] = {}
    for image_id, current in Image.objects.filter(pk__in=ids).values_list("id", "status"):
        c = counts.get(image_id, {"total": 0, "settled": 0, "started": 0})
        status = derive(current, total=c["total"], settled=c["settled"], started=c["started"],
                        examined=image_id in examined)
        if status != current:
            moves.setdefault(status, []).append(image_id)
    for status, moved in moves.items():
        Image.objects.filter(pk__in=moved).update(status=status, version=F("version") + 1, updated_at=Now())
        for image_id, project_id, version in Image.objects.filter(pk__in=moved).values_list("id", "project_id", "version"):
            events.emit(project_id, "image.status", image=image_id, status=status, version=version)
