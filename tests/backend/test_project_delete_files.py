"""Deleting a project deletes its stored files: its photos, thumbnails and gallery stayed on disk
(a privacy problem: a user deleting a project expects its photos gone)."""
from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.gallery.models import GalleryImage
from backend.gallery.services import upload_exemplars
from backend.images.models import Image

from .factories import make_class, make_image, make_project, make_user, synthetic_png

pytestmark = pytest.mark.django_db(transaction=True)


def test_deleting_a_project_deletes_its_files_and_no_other_projects(celery_worker, client_for):
    owner = make_user("owner")
    project, other = make_project(owner, name="Gone"), make_project(owner, name="Kept")
    hammer = make_class(project, "hammer")
    for seed in (1, 2):
        make_image(project, seed=seed)
    kept = make_image(other, seed=3)
    upload_exemplars(project=project, user=owner, files=[SimpleUploadedFile("h.png", synthetic_png(7))], class_id=hammer.pk)
    from backend.images.services import ensure_rendition

    ensure_rendition(Image.objects.filter(project=project).first())  # the display PNG a TIFF is shown by
    names = [n for row in Image.objects.filter(project=project).values_list("file", "thumbnail", "rendition")
             for n in row if n]
    names += list(GalleryImage.objects.filter(project=project).values_list("file", flat=True))
    assert len(names) == 6 and all(default_storage.exists(n) for n in names)
    project.refresh_from_db()
    response = client_for(owner).delete(f"/api/projects/{project.pk}/?version={project.version}")
    assert response.status_code == 204, response.content
    deadline = time.monotonic() + 30
    while any(default_storage.exists(n) for n in names) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [n for n in names if default_storage.exists(n)]
    assert default_storage.exists(kept.file.name) and default_storage.exists(Image.objects.get(pk=kept.pk).thumbnail)
