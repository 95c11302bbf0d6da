"""An image's review status is derived from its annotations; only the aggregate's writer calls this."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Q
from django.db.models.functions import Now

from backend.core import events
from backend.images.models import Image, ImageStatus
from backend.images.versions import with_api_version

from .models import ReviewState, Source

_PENDING = ReviewState.PENDING
# Counted over an image's objects (Image.annotations) in an aggregate's FILTER. Settled: both
# parts decided. Started: anything a person did (an annotator's edit stays pending review but is
# started work), or any decision.
_SETTLED = ~Q(annotations__class_review=_PENDING) & ~Q(annotations__mask_review=_PENDING)
_STARTED = (~Q(annotations__class_review=_PENDING) | ~Q(annotations__mask_review=_PENDING)
            | Q(annotations__source=Source.HUMAN) | Q(annotations__updated_by__isnull=False))


def derive(current: str, *, total: int, settled: int, started: int, examined: bool = False,
           reviewed: bool = False) -> str:
    if total == 0:
        # Nothing on it: a model that looked moves it on from "new"; a reviewer's accept-all on one
        # a model looked at says "nothing to label" (done); otherwise it keeps its status.
        if reviewed and current in (ImageStatus.PRELABELED, ImageStatus.IN_REVIEW):
            return ImageStatus.DONE
        return ImageStatus.PRELABELED if examined and current == ImageStatus.NEW else current
    if settled == total:
        return ImageStatus.DONE
    if started:
        return ImageStatus.IN_REVIEW
    return ImageStatus.PRELABELED


def refresh_statuses(image_ids: Iterable[int], *, examined: set[int] = frozenset(),
                     reviewed: set[int] = frozenset()) -> None:
    """Re-derive the status of these images in a few statements (call inside the writing
    transaction); a changed status bumps the image's version and is announced live. `reviewed`:
    images a reviewer accepted as they are (derive)."""
    ids = list(image_ids)
    for start in range(0, len(ids), 1_000):
        _refresh(ids[start:start + 1_000], examined, reviewed)


def _refresh(ids: list[int], examined: set[int], reviewed: set[int]) -> None:
    # Each image's status with its objects' counts: one statement (every writer runs this).
    rows = Image.objects.filter(pk__in=ids).annotate(
        total=Count("annotations"), settled=Count("annotations", filter=_SETTLED),
        started=Count("annotations", filter=_STARTED),
    ).values_list("id", "status", "total", "settled", "started")
    moves: dict[str, list[int]] = {}
    for image_id, current, total, settled, started in rows:
        status = derive(current, total=total, settled=settled, started=started, examined=image_id in examined,
                        reviewed=image_id in reviewed)
        if status != current:
            moves.setdefault(status, []).append(image_id)
    for status, moved in moves.items():
        Image.objects.filter(pk__in=moved).update(status=status, version=F("version") + 1, updated_at=Now())
        for image in with_api_version(Image.objects.filter(pk__in=moved).only("id", "project_id", "version")):
            events.emit(image.project_id, "image.status", image=image.pk, status=status, version=image.api_version)
