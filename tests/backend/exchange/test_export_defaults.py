"""The default export is the approved set: approved objects, on images that have one. Pending
objects and images without an exported object come only when asked for."""
import json

import pytest
from pycocotools.coco import COCO

from backend.annotations.models import ReviewState, Source
from backend.exchange.models import ExportJob

from ..factories import make_class, make_image, make_project
from .helpers import H, W, annotate, export, rect

PENDING = {"source": Source.MODEL, "class_review": ReviewState.PENDING, "mask_review": ReviewState.PENDING}


@pytest.fixture
def mixed(admin_user):
    """10 images: 3 with approved objects (one also has a pending one), 2 with only pending model
    proposals, 1 with only a rejected object, 4 unreviewed with nothing on them."""
    project = make_project(admin_user, name="Mixed")
    hammer = make_class(project, "hammer")
    images = [make_image(project, width=W, height=H, seed=s) for s in range(1, 11)]
    approved = [annotate(images[i], hammer, rect(2, 20, 3, 25)) for i in (0, 1, 2)]
    pending = [annotate(images[i], hammer, rect(22, 40, 30, 50), **PENDING) for i in (2, 3, 4)]
    annotate(images[5], hammer, rect(2, 20, 3, 25), class_review=ReviewState.REJECTED)
    return project, images, approved, pending


def coco_of(project, user, tmp_path, **options):
    job, zf = export(project, user, "coco", **options)
    path = tmp_path / f"instances-{job.pk}.json"
    path.write_bytes(zf.read("annotations/instances.json"))
    return job, COCO(str(path))


@pytest.mark.django_db
def test_default_coco_export_lists_only_images_with_approved_objects(mixed, admin_user, tmp_path):
    project, images, approved, pending = mixed
    job, coco = coco_of(project, admin_user, tmp_path)
    assert sorted(coco.getImgIds()) == [images[i].pk for i in (0, 1, 2)]
    assert sorted(coco.getAnnIds()) == sorted(a.pk for a in approved)
    assert job.options["include_empty_images"] is False
    assert job.result == {"images": 3, "annotations": 3}
    assert job.progress_done == job.progress_total == 3


@pytest.mark.django_db
def test_include_empty_images_brings_the_rest_back(mixed, admin_user, tmp_path):
    project, images, approved, pending = mixed
    job, coco = coco_of(project, admin_user, tmp_path, include_empty_images=True)
    assert sorted(coco.getImgIds()) == sorted(i.pk for i in images)
    assert sorted(coco.getAnnIds()) == sorted(a.pk for a in approved)  # objects: still approved only
    assert job.result == {"images": 10, "annotations": 3}


@pytest.mark.django_db
def test_include_pending_lists_images_with_pending_objects(mixed, admin_user, tmp_path):
    project, images, approved, pending = mixed
    _, coco = coco_of(project, admin_user, tmp_path, include_pending=True)
    assert sorted(coco.getImgIds()) == [images[i].pk for i in (0, 1, 2, 3, 4)]
    assert sorted(coco.getAnnIds()) == sorted(a.pk for a in approved + pending)


@pytest.mark.django_db
def test_an_empty_image_asked_for_by_id_is_known_and_listed_only_on_request(mixed, admin_user, tmp_path):
    project, images, approved, pending = mixed
    empty = images[9]
    _, coco = coco_of(project, admin_user, tmp_path, image_ids=[empty.pk, images[0].pk])
    assert coco.getImgIds() == [images[0].pk]
    _, coco = coco_of(project, admin_user, tmp_path, image_ids=[empty.pk], include_empty_images=True)
    assert coco.getImgIds() == [empty.pk] and coco.getAnnIds() == []


@pytest.mark.django_db
def test_api_takes_include_empty_images(mixed, admin_user, client_for):
    project, *_ = mixed
    client = client_for(admin_user)
    base = f"/api/projects/{project.pk}/exports/"
    response = client.post(base, {"format": "coco"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["options"]["include_empty_images"] is False
    ExportJob.objects.filter(pk=response.json()["id"]).update(status="done")  # one export at a time per project
    response = client.post(base, {"format": "yolo", "include_empty_images": True}, format="json")
    assert response.status_code == 202, response.content
    assert ExportJob.objects.get(pk=response.json()["id"]).options["include_empty_images"] is True


@pytest.mark.django_db
def test_yolo_default_export_writes_no_label_files_for_empty_images(mixed, admin_user):
    project, images, *_ = mixed
    _, zf = export(project, admin_user, "yolo")
    labels = sorted(n for n in zf.namelist() if n.startswith("labels/"))
    assert labels == [f"labels/img{s}.txt" for s in (1, 2, 3)]
    _, zf = export(project, admin_user, "native", include_empty_images=True)
    assert len(json.loads(zf.read("predictions.json"))) == 10
