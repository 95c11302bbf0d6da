"""Gallery versions: the set of exemplars the matcher sees, recorded on every change and pinned by jobs."""
from __future__ import annotations

from django.db import transaction

from backend.projects.models import Project

from .models import GalleryImage, GalleryVersion, HardNegative


def live_exemplar_ids(project_id: int) -> list[int]:
    """What the matcher sees now: exemplars not removed, of active classes (an instance of an
    inactive type is out with its type)."""
    return list(
        GalleryImage.objects.filter(project_id=project_id, removed_at__isnull=True, label_class__active=True)
        .exclude(label_class__parent__active=False)
        .order_by("id").values_list("pk", flat=True)
    )


def live_negative_ids(project_id: int) -> list[int]:
    """Hard negatives the matcher applies now: not removed, of active classes."""
    return list(
        HardNegative.objects.filter(project_id=project_id, removed_at__isnull=True, label_class__active=True)
        .exclude(label_class__parent__active=False)
        .order_by("id").values_list("pk", flat=True)
    )


@transaction.atomic
def current_version(project_id: int) -> GalleryVersion:
    """The newest version, recording a new one when the live gallery differs from it or the
    project's counter moved on (a gallery change: projects.services.gallery_changed bumps it).
    Recording lazily here also covers projects from before versions existed and exemplars
    written outside the services (admin, fixtures)."""
    project = Project.objects.select_for_update().only("pk", "gallery_version").get(pk=project_id)
    live, negatives = live_exemplar_ids(project_id), live_negative_ids(project_id)
    latest = GalleryVersion.objects.filter(project_id=project_id).order_by("-number").first()
    if (latest is not None and latest.exemplar_ids == live and latest.negative_ids == negatives
            and latest.number == project.gallery_version):
        return latest
    number = project.gallery_version
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
