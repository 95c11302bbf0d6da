"""Black-box round 15: a deactivated class is refused by a person's create and by a restore, but
imports (as accepted too) wrote objects of it, which then reached approved-only exports and
training; and an instance of a deactivated type (which jobs and the gallery drop) was taken by
create, PATCH and import alike."""
import json

import pytest

from backend.annotations.models import Annotation

from .exchange.helpers import json_upload, run_import
from .factories import make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


def coco(image, *names: str) -> dict:
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    annotations = [{"id": i + 1, "image_id": 1, "category_id": i + 1, "bbox": [2, 2, 10, 10], "iscrowd": 0,
                    "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "area": 100} for i in range(len(names))]
    return {"images": [{"id": 1, "file_name": image.original_name, "width": image.width, "height": image.height}],
            "categories": categories, "annotations": annotations}


@pytest.fixture
def setup():
    owner = make_user("inactive-owner")
    project = make_project(owner)
    image = make_image(project, width=64, height=48, seed=3)
    old = make_class(project, "old", active=False)
    screwdriver = make_class(project, "screwdriver", active=False)
    instance = make_class(project, "sd-1", kind="instance", parent=screwdriver)
    live = make_class(project, "live")
    return owner, project, image, old, instance, live


def test_an_import_refuses_objects_of_an_inactive_class_and_of_an_inactive_types_instance(setup):
    owner, project, image, old, instance, live = setup
    job = run_import(project, owner, "coco", json_upload(coco(image, "old", "sd-1", "live")), as_accepted=True)
    errors = json.dumps(job.errors)
    assert "class 'old' is inactive" in errors, job.errors
    assert "instance of the inactive type 'screwdriver'" in errors, job.errors
    assert list(Annotation.objects.filter(project=project).values_list("label_class__name", flat=True)) in ([], ["live"])
    assert not Annotation.objects.filter(label_class__in=[old, instance]).exists()


def test_create_and_patch_refuse_an_instance_of_an_inactive_type(setup, client_for):
    owner, project, image, _, instance, live = setup
    client = client_for(owner)
    body = {"image": image.pk, "label_class": instance.pk, "mask_rle": rect_rle(48, 64, 2, 2, 20, 20)}
    created = client.post(f"/api/projects/{project.pk}/annotations/", body, format="json")
    assert created.status_code == 400 and "instance of the inactive type 'screwdriver'" in created.json()["detail"]
    annotation = make_model_annotation(image, live)
    patched = client.patch(f"/api/projects/{project.pk}/annotations/{annotation.pk}/",
                           {"label_class": instance.pk, "version": annotation.version}, format="json")
    assert patched.status_code == 400 and "inactive type" in patched.json()["detail"]
    annotation.refresh_from_db()
    assert annotation.label_class_id == live.pk
