"""Gallery versions: the set of exemplars the matcher sees, recorded on every change and pinned by jobs."""
from __future__ import annotations

from django.contrib.postgres.expressions import ArraySubquery
from django.db import transaction

from backend.projects.models import Project

from .models import GalleryImage, GalleryVersion, HardNegative


def _live(model, project_id: int):
    """Exemplars (GalleryImage) or hard negatives (HardNegative) the matcher applies now: not
    removed, of active classes (an instance of an inactive type is out with its type); ids in order."""
    return (
        model.objects.filter(project_id=project_id, removed_at__isnull=True, label_class__active=True)
        .exclude(label_class__parent__active=False)
        .order_by("id").values("pk")
    )


def live_exemplar_ids(project_id: int) -> list[int]:
    """What the matcher sees now."""
    return [row["pk"] for row in _live(GalleryImage, project_id)]


def live_negative_ids(project_id: int) -> list[int]:
    """Hard negatives the matcher applies now."""
    return [row["pk"] for row in _live(HardNegative, project_id)]


@transaction.atomic
def current_version(project_id: int) -> GalleryVersion:
    """The newest version, recording a new one when the live gallery differs from it or the
    project's counter moved on (a gallery change: projects.services.gallery_changed bumps it).
    Recording lazily here also covers projects from before versions existed and exemplars
    written outside the services (admin, fixtures)."""
    counter = Project.objects.select_for_update().filter(pk=project_id).values_list("gallery_version", flat=True).get()
    return current_version_locked(project_id, counter)


def current_version_locked(project_id: int, counter: int) -> GalleryVersion:
    """current_version for a caller that already holds the project row's lock (FOR UPDATE, in its
    open transaction) and read its gallery counter with it: a job's start takes that lock anyway."""
    # The newest version with the live ids beside it: one statement (three were a job start's
    # largest fixed cost); only a project's very first version needs them on their own.
    latest = (
        GalleryVersion.objects.filter(project_id=project_id).order_by("-number")
        .annotate(live=ArraySubquery(_live(GalleryImage, project_id)),
                  live_negatives=ArraySubquery(_live(HardNegative, project_id)))
        .first()
    )
    if latest is None:
        live, negatives = live_exemplar_ids(project_id), live_negative_ids(project_id)
    else:
        live, negatives = latest.live, latest.live_negatives
    if latest is not None and latest.exemplar_ids == live and latest.negative_ids == negatives and latest.number == counter:
        return latest
    number = counter
    if latest is not None and latest.number >= number:  # changed without a bump: bump now
        number = latest.number + 1
        Project.objects.filter(pk=project_id).update(gallery_version=number)
    return GalleryVersion.objects.create(project_id=project_id, number=number, exemplar_ids=live, negative_ids=negatives)


def pinned_version(project_id: int, snapshot: dict) -> GalleryVersion:
    """The version a job pinned at start; jobs started before versions existed use the newest."""
    version_id = snapshot.get("gallery_version_id")
    if version_id is not None:
        found = GalleryVersion.objects.filter(project_id=project_id, pk=version_id).first()
        if found is not None:
            return found
    return current_version(project_id)
