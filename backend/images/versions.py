"""An image's version as the API shows and checks it: the image row's own version plus the id of
the newest audit event of its objects.

Image.version moves with the image row (its status); a change to one of its objects (created,
edited, reviewed, deleted, by a person, a job, an import or a re-score) writes an AnnotationEvent
row of the image instead, and event ids only grow. So the sum moves with every change to the
image or its objects, without one more write to the image row on the review paths (every review
of one image would queue on that row). A delete with the version a list showed is refused once
anyone changed an object of the image since (black-box round 15: five objects added, a mask
edited, an object deleted, and the image was still "at version 2").

The (image_id, id) index on the events makes the newest event one index probe.
"""
from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from backend.core.errors import DomainError, VersionConflict


def _events():
    """The objects' audit events, through Image's reverse relation: images sits below annotations
    and does not import it (as its selectors count Image.annotations)."""
    from .models import Image

    return Image._meta.get_field("events").related_model.objects


def with_api_version(queryset: QuerySet) -> QuerySet:
    """Images annotated with their newest object event (`_last_event`): api_version reads it."""
    newest = _events().filter(image_id=OuterRef("pk")).order_by("-id").values("id")[:1]
    return queryset.annotate(_last_event=Coalesce(Subquery(newest), 0))


def api_version(image) -> int:
    last = getattr(image, "_last_event", None)
    if last is None:
        last = _events().filter(image_id=image.pk).order_by("-id").values_list("id", flat=True).first() or 0
    return image.version + last


def last_event_sql(image_id_sql: str) -> str:
    """SQL for the newest object event id of the image whose id is `image_id_sql` (0 if none)."""
    table = _events().model._meta.db_table
    return f"coalesce((SELECT max(e.id) FROM {table} e WHERE e.image_id = {image_id_sql}), 0)"


def check_api_version(image, version: int | None) -> None:
    """check_version for an image, against the version the API shows (call with the row locked)."""
    if version is None:
        raise DomainError("'version' is required: send the version you last read.")
    current = api_version(image)
    if current != version:
        raise VersionConflict(
            f"This image or its objects changed since you read it (you sent version {version}, it is now at "
            f"{current}). Reload it and try again.", extra={"current_version": current})
