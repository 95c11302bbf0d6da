"""Importing a project's own export back adds nothing twice (black-box ui5: every object was
added again; imports only ever added)."""
import pytest

from backend.annotations.models import Annotation, AnnotationEvent

from .helpers import annotate, export, json_upload, rect, run_import, zip_upload

pytestmark = pytest.mark.django_db

LOSSLESS = [("coco", {"segmentation": "rle"}), ("coco", {"segmentation": "polygon"}), ("labelme", {}),
            ("native", {}), ("labelstudio", {})]


@pytest.mark.parametrize(("fmt", "options"), LOSSLESS, ids=[f"{f}-{o.get('segmentation', '')}" for f, o in LOSSLESS])
def test_an_export_imported_back_into_its_project_adds_nothing(source, admin_user, fmt, options):
    project, _, _, _ = source
    before = sorted(Annotation.objects.filter(project=project).values_list("id", "version"))
    events = AnnotationEvent.objects.filter(project=project).count()
    _, exported = export(project, admin_user, fmt, **options)
    job = run_import(project, admin_user, fmt, zip_upload(exported), as_accepted=True)
    assert job.status == "done", job.errors
    assert job.result["annotations"] == 0 and job.result["already_present"] == 4, job.result
    assert sorted(Annotation.objects.filter(project=project).values_list("id", "version")) == before
    assert AnnotationEvent.objects.filter(project=project).count() == events


def test_only_the_twins_are_skipped(admin_user):
    from .helpers import build_project

    project, (hammer, wrench), images = build_project(admin_user)
    annotate(images[0], hammer, rect(2, 20, 3, 25))
    coco = {
        "images": [{"id": 1, "file_name": images[0].original_name, "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "hammer"}, {"id": 2, "name": "wrench"}],
        "annotations": [
            # the same box drawn one pixel shorter: IoU 0.94, the object the image has
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[3, 2, 25, 2, 25, 19, 3, 19]], "bbox": [3, 2, 22, 17], "area": 374},
            # the same box under another class: a different object
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [[3, 2, 25, 2, 25, 20, 3, 20]], "bbox": [3, 2, 22, 18], "area": 396},
            # half of it: a different object of the same class
            {"id": 3, "image_id": 1, "category_id": 1, "segmentation": [[3, 2, 14, 2, 14, 20, 3, 20]], "bbox": [3, 2, 11, 18], "area": 198},
            # two identical new ones in one file are both kept: only what the image had before counts
            {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[40, 30, 50, 30, 50, 40, 40, 40]], "bbox": [40, 30, 10, 10], "area": 100},
            {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[40, 30, 50, 30, 50, 40, 40, 40]], "bbox": [40, 30, 10, 10], "area": 100},
        ],
    }
    job = run_import(project, admin_user, "coco", json_upload(coco))
    assert job.status == "done", job.errors
    assert job.result["annotations"] == 4 and job.result["already_present"] == 1, job.result
    kept = Annotation.objects.filter(image=images[0]).exclude(source="human")
    assert sorted((a.label_class.name, a.area) for a in kept) == [("hammer", 100), ("hammer", 100), ("hammer", 198), ("wrench", 396)]
