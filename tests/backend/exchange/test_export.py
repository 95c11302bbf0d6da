import json

import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO

from backend.exchange import geometry

from .helpers import export


@pytest.mark.django_db
@pytest.mark.parametrize("segmentation", ["rle", "polygon"])
def test_coco_export_loads_in_pycocotools_and_masks_match(source, admin_user, tmp_path, segmentation):
    project, classes, images, anns = source
    job, zf = export(project, admin_user, "coco", segmentation=segmentation)
    path = tmp_path / "instances.json"
    path.write_bytes(zf.read("annotations/instances.json"))
    coco = COCO(str(path))
    # Stable ids = ours; the third image has only a pending and a rejected object: not listed by default.
    assert sorted(coco.getImgIds()) == [i.pk for i in images[:2]]
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == {c.pk: c.name for c in classes}
    exported = {a["id"]: a for a in coco.loadAnns(coco.getAnnIds())}
    # Approved only: the pending and the rejected object are left out.
    assert set(exported) == {anns[k].pk for k in ("box", "ring", "two", "thin")}
    for ann in exported.values():
        ours = geometry.decode(next(a for a in anns.values() if a.pk == ann["id"]).mask_rle)
        assert np.array_equal(coco.annToMask(ann), ours)
    if segmentation == "polygon":
        assert isinstance(exported[anns["box"].pk]["segmentation"], list)
        assert isinstance(exported[anns["ring"].pk]["segmentation"], dict)  # holes stay RLE
    assert job.result == {"images": 2, "annotations": 4}
    assert job.progress_done == job.progress_total == 2


@pytest.mark.django_db
def test_export_scope_pending_and_image_filter(source, admin_user):
    project, classes, images, anns = source
    _, zf = export(project, admin_user, "coco", include_pending=True)
    doc = json.loads(zf.read("annotations/instances.json"))
    ids = {a["id"] for a in doc["annotations"]}
    assert anns["pending"].pk in ids and anns["rejected"].pk not in ids
    _, zf = export(project, admin_user, "coco", image_ids=[images[1].pk])
    doc = json.loads(zf.read("annotations/instances.json"))
    assert [i["id"] for i in doc["images"]] == [images[1].pk]
    assert {a["image_id"] for a in doc["annotations"]} == {images[1].pk}
    # Nothing matches: refused at the start, saying why (it ended "done" with no images, round 16).
    from backend.core.errors import DomainError

    with pytest.raises(DomainError, match="Nothing to export: no image among the chosen statuses has an approved object"):
        export(project, admin_user, "coco", status=["done"])


@pytest.mark.django_db
def test_labelme_export_loads_with_labelme(source, admin_user, tmp_path):
    from labelme import LabelFile
    from labelme.utils import shapes_to_label

    project, classes, images, anns = source
    _, zf = export(project, admin_user, "labelme", include_images=True)
    zf.extractall(tmp_path)
    label_file = LabelFile(filename=str(tmp_path / "img1.json"))
    assert label_file.image_path == "img1.png"
    kinds = sorted(s["shape_type"] for s in label_file.shapes)
    assert kinds == ["mask", "polygon"]  # the ring has a hole: a mask shape
    # LabelMe's own rasterizer gives back exactly our pixels, instance by instance.
    for name in ("img1", "img2"):
        lf = LabelFile(filename=str(tmp_path / f"{name}.json"))
        _, instances = shapes_to_label((48, 64), lf.shapes, {"hammer": 1, "wrench": 2})
        expected = [a for a in anns.values() if a.image.original_name == f"{name}.png" and a.class_review == "accepted"
                    and a.mask_review == "accepted"]
        for index, annotation in enumerate(sorted(expected, key=lambda a: a.pk), 1):
            assert np.array_equal(instances == index, geometry.decode(annotation.mask_rle).astype(bool))


@pytest.mark.django_db
def test_yolo_export_layout(source, admin_user):
    project, classes, images, anns = source
    _, zf = export(project, admin_user, "yolo", include_images=True)
    names = set(zf.namelist())
    assert {"data.yaml", "labels/img1.txt", "images/img1.png"} <= names
    assert "labels/img3.txt" not in names  # nothing approved on it: left out by default
    assert yaml.safe_load(zf.read("data.yaml"))["names"] == {0: "hammer", 1: "wrench"}
    lines = zf.read("labels/img2.txt").decode().splitlines()
    assert len(lines) == 2  # one line per object: the two-part wrench and the sliver + its lone pixel joined
    assert all(float(v) <= 1 for line in lines for v in line.split()[1:])


@pytest.mark.django_db
def test_native_export_is_row_major_rle(source, admin_user):
    project, classes, images, anns = source
    _, zf = export(project, admin_user, "native")
    doc = json.loads(zf.read("predictions.json"))
    det = doc[0]["detections"][0]
    assert doc[0]["image"] == "img1.png" and det["class"] == "hammer" and det["score_metric"] == 0.75
    assert det["mask_rle"]["order"] == "row-major" and det["mask_rle"]["size"] == [48, 64]
    mask = geometry.from_row_major(det["mask_rle"]["size"], det["mask_rle"]["counts"])
    assert np.array_equal(mask, geometry.decode(anns["box"].mask_rle))
    assert det["bbox_xyxy"] == [3.0, 2.0, 25.0, 20.0]


@pytest.mark.django_db
def test_export_renames_clashing_file_names(admin_user):
    from backend.exchange.selectors import unique_file_name

    used: set[str] = set()
    assert unique_file_name("a/IMG_1.JPG", 5, "x.jpg", used) == "IMG_1.JPG"
    assert unique_file_name("b/IMG_1.JPG", 9, "x.jpg", used) == "IMG_1_9.JPG"
    assert unique_file_name("noext", 3, "s/abc.png", used) == "noext.png"


@pytest.mark.django_db
def test_a_retry_after_a_database_outage_takes_back_the_export_its_first_run_left_running(source, admin_user):
    """The first run claimed the job, then lost the database (it could not even record a failure):
    its retry (resume=True) runs it from the start; a plain redelivery leaves a running job alone."""
    from backend.exchange import services
    from backend.exchange.models import ExportJob

    project, *_ = source
    job = services.start_export(project=project, user=admin_user, format="coco")
    ExportJob.objects.filter(pk=job.pk).update(status="running")
    assert services.run_export(job_id=job.pk) is None
    done = services.run_export(job_id=job.pk, resume=True)
    assert done.status == "done" and done.result == {"images": 2, "annotations": 4}
