"""Fix round 2: an image or a class that goes away while an export or an import runs.

- Export with include_images: an image whose file vanished meanwhile is left out of the zip and
  listed in the export's result (`missing_images`); the export still finishes.
- No export/import error shows a path on the server.
- Import: a class deleted between the checking and the writing pass fails the import with a
  message naming the class (not PostgreSQL's foreign-key text), and writes nothing.
"""
from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from backend.annotations.models import Annotation
from backend.core.errors import STORAGE_MESSAGE
from backend.exchange import importing, services
from backend.exchange.models import ImportJob
from backend.projects.models import LabelClass

from .helpers import build_project, export, json_upload, run_here, run_import
from .test_import_streaming import coco_doc


@pytest.mark.django_db
def test_export_leaves_out_an_image_whose_file_vanished_and_lists_it(source, admin_user):
    project, _, images, _ = source
    default_storage.delete(images[1].file.name)  # deleted while the export ran: its file is gone
    job, zf = export(project, admin_user, "coco", include_images=True, include_empty_images=True)
    assert job.status == "done" and not job.error
    assert job.result["missing_images"] == [images[1].pk]
    names = [n for n in zf.namelist() if n.startswith("images/")]
    assert len(names) == 2 and "img2.png" not in " ".join(names)
    for name in names:
        assert zf.read(name)  # the others are whole


@pytest.mark.django_db
def test_an_export_whose_project_is_deleted_while_it_runs_leaves_no_file(source, admin_user, monkeypatch):
    """The zip (the deleted project's images and objects) stayed under exports/ for good, and
    the worker logged ExportJob.DoesNotExist."""
    from backend.projects.models import Project
    from backend.projects.services import delete_project

    project, _, _, _ = source
    real = services.write_export

    def write_then_the_project_is_deleted(**kwargs):
        result = real(**kwargs)
        delete_project(project_id=project.pk, version=Project.objects.get(pk=project.pk).version)
        return result

    monkeypatch.setattr(services, "write_export", write_then_the_project_is_deleted)
    with run_here():
        job = services.start_export(project=project, user=admin_user, format="coco", include_images=True)
    assert services.run_export(job_id=job.pk) is None
    folder = f"exports/{project.pk}"
    assert not default_storage.exists(folder) or default_storage.listdir(folder) == ([], [])


@pytest.mark.django_db
def test_export_error_shows_no_server_path(source, admin_user, monkeypatch):
    project, _, _, _ = source

    def boom(**kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/srv/razmetka/var/media/projects/4/images/eb97.png")

    monkeypatch.setattr(services, "write_export", boom)
    with run_here():
        job = services.start_export(project=project, user=admin_user, format="coco", include_images=True)
    job = services.run_export(job_id=job.pk)
    assert job.status == "failed"
    assert job.error == "No such file or directory: 'eb97.png'"


@pytest.mark.django_db
def test_import_internal_error_shows_no_server_path(target, admin_user, monkeypatch):
    project, _, _ = target

    def boom(**kwargs):
        raise OSError(13, "Permission denied", "/srv/razmetka/var/media/imports/1/abc.json")

    monkeypatch.setattr(importing, "apply_import", boom)
    job = run_import(project, admin_user, "coco", json_upload(coco_doc(3), "instances.json"))
    assert job.status == "failed"
    # A refusal of the file store is said as such (round 11), never with the server's path.
    assert job.errors == [{"item": "instances.json", "error": f"internal error: {STORAGE_MESSAGE}"}]


def _import_deleting_a_class_after_pass_1(admin_user, name):
    project, classes, _ = build_project(admin_user, name=f"ClassGone-{name}")
    with run_here():
        job = services.start_import(project=project, user=admin_user, format="coco",
                                    upload=json_upload(coco_doc(60), "instances.json"))
    services._claim(ImportJob, job.pk)
    job = ImportJob.objects.select_related("project").get(pk=job.pk)
    reporter = services.ImportProgress(job)
    wrench = classes[1]

    def report(stage, done, total):
        reporter(stage, done, total)
        if (stage, total) == ("checking", 60):  # pass 1 is over: someone deletes the class
            LabelClass.objects.filter(pk=wrench.pk).delete()

    before = Annotation.objects.count()
    try:
        return importing.apply_import(job=job, progress=report), before
    finally:
        reporter.close()


@pytest.mark.django_db(transaction=True)
def test_class_deleted_between_the_passes_names_it_and_applies_nothing(admin_user):
    (errors, result), before = _import_deleting_a_class_after_pass_1(admin_user, "lock")
    assert errors == [{"item": "instances.json", "error": "class 'wrench' was deleted while the import ran; "
                                                         "nothing was written. Run the import again."}]
    assert result == {"error_count": 1} and Annotation.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_foreign_key_failure_of_the_writing_pass_is_told_plainly(admin_user, monkeypatch):
    """Should a class still vanish under the writes, the database's refusal becomes the same message."""
    monkeypatch.setattr(importing, "_lock_classes", lambda existing: None)
    (errors, result), before = _import_deleting_a_class_after_pass_1(admin_user, "fk")
    assert errors == [{"item": "instances.json", "error": "class 'wrench' was deleted while the import ran; "
                                                         "nothing was written. Run the import again."}]
    assert "violates" not in str(errors) and Annotation.objects.count() == before
