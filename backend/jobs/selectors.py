"""Reads about jobs that the views answer with."""
from __future__ import annotations

from django.utils import timezone

from backend.images.models import Image

from .models import PrelabelJob


def held_by_others(job: PrelabelJob, user) -> dict:
    """The job's images someone else has open (a live claim) as it starts: their untouched
    proposals will be replaced under them, which the starter is told (black-box round 15)."""
    held = (Image.objects.filter(pk__in=job.items.values("image_id"), claimed_by__isnull=False,
                                 claim_expires_at__gt=timezone.now())
            .exclude(claimed_by=user).values_list("claimed_by__username", flat=True))
    people = list(held)
    return {"count": len(people), "people": sorted(set(people))}


def with_objects_found(queryset):
    """Each job with `objects_found`, the objects its images got: a subquery PostgreSQL runs for the
    page's rows only (the list's serializer asked once per finished job)."""
    from django.db.models import IntegerField, OuterRef, Subquery, Sum

    from .models import PrelabelJobImage

    found = (PrelabelJobImage.objects.filter(job=OuterRef("pk")).order_by().values("job")
             .annotate(n=Sum("detections")).values("n"))
    return queryset.annotate(objects_found=Subquery(found, output_field=IntegerField()))
