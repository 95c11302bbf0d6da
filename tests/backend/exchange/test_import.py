import copy

import numpy as np
import pytest

from backend.annotations.models import Annotation, AnnotationEvent
from backend.exchange import geometry
from backend.exchange.formats.labelstudio import brush_encode
from backend.projects.models import LabelClass

from ..factories import zip_bytes
from .helpers import H, W, json_upload, rect, run_import


def coco(file_name="img1.png", segmentation=None, bbox=None, category_id=1, width=W, height=H, image_id=7):
    ann = {"id": 1, "image_id": image_id, "category_id": category_id, "iscrowd": 0}
    if segmentation is not None:
        ann["segmentation"] = segmentation
    if bbox is not None:
        ann["bbox"] = bbox
    return {"images": [{"id": 7, "file_name": file_name, "width": width, "height": height}],
            "annotations": [ann], "categories": [{"id": 1, "name": "hammer"}]}


def counts():
    return Annotation.objects.count(), AnnotationEvent.objects.count(), LabelClass.objects.count()


BAD = {
    "malformed json": (b'{"images": [', "annotations.json", "malformed JSON"),
    "unknown category": (coco(bbox=[1, 1, 5, 5], category_id=9), "annotation 1", "unknown category_id 9"),
    "dotdot file name": (coco("../etc/img1.png", bbox=[1, 1, 5, 5]), "image 7", "contains '..'"),
    "absolute file name": (coco("/data/img1.png", bbox=[1, 1, 5, 5]), "image 7", "absolute path"),
    "mask size mismatch": (coco(segmentation=geometry.encode(np.ones((10, 10), np.uint8)), width=10, height=10),
                           "annotation 1", "the file says the image is 10x10"),
    "rle size mismatch": (coco(segmentation=geometry.encode(np.ones((10, 10), np.uint8))),
                          "annotation 1", "mask size [10, 10] does not match"),
    "bbox beyond image": (coco(bbox=[50, 40, 30, 30]), "annotation 1", "reaches outside the image"),
    "polygon beyond image": (coco(segmentation=[[0, 0, 100, 0, 100, 10]]), "annotation 1", "reaches outside"),
    "image not in project": (coco("nope.png", bbox=[1, 1, 5, 5]), "annotation 1", "image 'nope.png' is not in this project"),
    # Found by a black-box tester: each was accepted (or mis-explained) before.
    "width not a number": (coco(bbox=[1, 1, 5, 5], width="abc"), "image 7", "'width' and 'height' must be positive integers"),
    "segmentation a number": (coco(segmentation=5, bbox=[1, 1, 5, 5]), "annotation 1", "segmentation must be polygons"),
    "two images one id": ({**coco(bbox=[1, 1, 5, 5]), "images": [{"id": 7, "file_name": "img1.png"},
                                                              {"id": 7, "file_name": "img2.png"}]},
                          "image 7", "a second image entry with id 7"),
    "rle counts outside the alphabet": (coco(segmentation={"size": [H, W], "counts": "~~~~"}), "annotation 1",
                                        "outside COCO's compressed RLE alphabet"),
    "two categories one id": ({**coco(bbox=[1, 1, 5, 5]), "categories": [{"id": 1, "name": "hammer"}, {"id": 1, "name": "saw"}]},
                              "category 1", "a second category with id 1 ('saw'; the first is 'hammer')"),
    "category name an object": ({**coco(bbox=[1, 1, 5, 5]), "categories": [{"id": 1, "name": {"x": 1}}]},
                                "category 1", "a category needs a 'name' string"),
    "unknown class": ({"images": [{"id": 7, "file_name": "img1.png"}], "categories": [{"id": 1, "name": "saw"}],
                       "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 1, 4, 4]}]},
                      "annotation 1", "unknown class 'saw'"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD))
def test_bad_coco_input_is_refused_and_applies_nothing(target, admin_user, case):
    project, _, _ = target
    doc, item, message = copy.deepcopy(BAD[case])
    # A good annotation next to the bad one: it must not be applied either.
    if isinstance(doc, dict):
        doc["annotations"].append({"id": 2, "image_id": doc["images"][0]["id"], "category_id": 1, "bbox": [1, 1, 4, 4]})
        if case == "unknown class":
            doc["categories"].append({"id": 2, "name": "hammer"})
            doc["annotations"][-1]["category_id"] = 2
    before = counts()
    job = run_import(project, admin_user, "coco", json_upload(doc))
    assert job.status == "failed"
    assert any(item in e["item"] and message in e["error"] for e in job.errors), job.errors
    assert counts() == before


@pytest.mark.django_db
def test_unknown_class_created_on_request(target, admin_user):
    project, _, images = target
    doc = copy.deepcopy(BAD["unknown class"][0])
    job = run_import(project, admin_user, "coco", json_upload(doc), create_missing_classes=True)
    assert job.status == "done", job.errors
    assert job.result["classes_created"] == ["saw"]
    assert Annotation.objects.get(project=project).label_class.name == "saw"


@pytest.mark.django_db
def test_boxes_only_become_rectangles_flagged_for_sam(target, admin_user):
    project, _, images = target
    job = run_import(project, admin_user, "coco", json_upload(coco(bbox=[2, 3, 10, 5])))
    assert job.status == "done", job.errors
    ann = Annotation.objects.get(project=project)
    assert job.result["box_only"] == [ann.pk]
    assert np.array_equal(geometry.decode(ann.mask_rle), rect(3, 8, 2, 12))
    assert (ann.source, ann.class_review) == ("model", "pending")


@pytest.mark.django_db
def test_labelme_zip_with_rectangle_polygon_and_unsafe_entry(target, admin_user):
    project, _, _ = target
    doc = {"imagePath": "img2.png", "imageHeight": H, "imageWidth": W, "shapes": [
        {"label": "wrench", "points": [[2, 2], [11, 7]], "shape_type": "rectangle"},
        {"label": "hammer", "points": [[20, 20], [30, 20], [30, 30]], "shape_type": "polygon", "group_id": 4},
        {"label": "hammer", "points": [[40, 5], [45, 5], [45, 9]], "shape_type": "polygon", "group_id": 4},
    ]}
    import json

    job = run_import(project, admin_user, "labelme", json_upload(zip_bytes({"a/img2.json": json.dumps(doc).encode()}), "lm.zip"))
    assert job.status == "done", job.errors
    anns = list(Annotation.objects.filter(project=project).order_by("id"))
    assert len(anns) == 2 and job.result["box_only"] == [anns[0].pk]
    assert np.array_equal(geometry.decode(anns[0].mask_rle), rect(2, 8, 2, 12))  # LabelMe corners are inclusive
    before = counts()
    bad = zip_bytes({"img2.json": json.dumps(doc).encode(), "../evil.json": b"{}"})
    job = run_import(project, admin_user, "labelme", json_upload(bad, "lm.zip"))
    assert job.status == "failed" and "'..'" in job.errors[0]["error"] and "evil.json" in job.errors[0]["item"]
    assert counts() == before


@pytest.mark.django_db
def test_yolo_detection_and_segmentation_lines(target, admin_user):
    project, _, _ = target
    upload = zip_bytes({
        "data.yaml": b"names: [hammer, wrench]\n",
        "labels/img1.txt": b"0 0.5 0.5 0.25 0.25\n1 0.1 0.1 0.3 0.1 0.3 0.3\n",
        "labels/img3.txt": b"7 0.5 0.5 0.1 0.1\n",
    })
    before = counts()
    job = run_import(project, admin_user, "yolo", json_upload(upload, "y.zip"))
    assert job.status == "failed" and job.errors == [
        {"item": "labels/img3.txt: line 1", "error": "unknown class index 7 (data.yaml names 2 classes)"}]
    assert counts() == before
    upload = zip_bytes({"data.yaml": b"names: [hammer, wrench]\n", "labels/img1.txt": b"0 0.5 0.5 0.25 0.25\n"})
    job = run_import(project, admin_user, "yolo", json_upload(upload, "y.zip"))
    assert job.status == "done" and len(job.result["box_only"]) == 1
    assert np.array_equal(geometry.decode(Annotation.objects.get(project=project).mask_rle), rect(18, 30, 24, 40))


@pytest.mark.django_db
def test_native_seed_format(target, admin_user):
    project, _, _ = target
    mask = rect(4, 9, 10, 30)
    doc = [{"image": "img3.png", "detections": [{
        "bbox_xyxy": [10, 4, 30, 9], "class": "wrench", "score_metric": None, "score_vlm": 0.6, "vlm_class": "tool",
        "ranked": [{"name": "wrench", "score": 0.7}, {"name": "saw", "score": 0.2}],
        "mask_rle": {"size": [H, W], "counts": geometry.row_major_runs(mask), "order": "row-major"}}]}]
    job = run_import(project, admin_user, "native", json_upload(doc, "predictions.json"))
    assert job.status == "done", job.errors
    ann = Annotation.objects.get(project=project)
    assert np.array_equal(geometry.decode(ann.mask_rle), mask)
    assert ann.class_score is None and ann.det_score == 0.6 and ann.candidates[1]["class_id"] is None
    doc[0]["detections"][0]["mask_rle"]["counts"] = [5, 5]
    job = run_import(project, admin_user, "native", json_upload(doc, "predictions.json"))
    assert job.status == "failed" and "summing to height*width" in job.errors[0]["error"]


@pytest.mark.django_db
def test_label_studio_brush_rectangle_polygon(target, admin_user):
    project, _, _ = target
    base = {"original_width": W, "original_height": H, "from_name": "tag", "to_name": "image"}
    mask = rect(10, 20, 10, 20)
    task = {"id": 3, "data": {"image": "/data/upload/1/0a1b2c3d-img1.png"}, "annotations": [{"result": [
        {**base, "id": "a", "type": "brushlabels", "value": {"format": "rle", "rle": brush_encode(mask), "brushlabels": ["hammer"]}},
        {**base, "id": "b", "type": "rectanglelabels", "value": {"x": 50, "y": 50, "width": 25, "height": 25, "rectanglelabels": ["wrench"]}},
        {**base, "id": "c", "type": "polygonlabels", "value": {"points": [[0, 0], [10, 0], [10, 10]], "polygonlabels": ["wrench"]}},
        {"id": "d", "type": "choices", "value": {"choices": ["ok"]}},
    ]}]}
    job = run_import(project, admin_user, "labelstudio", json_upload([task], "ls.json"))
    assert job.status == "done", job.errors
    anns = list(Annotation.objects.filter(project=project).order_by("id"))
    assert len(anns) == 3 and job.result["box_only"] == [anns[1].pk]
    assert np.array_equal(geometry.decode(anns[0].mask_rle), mask)
    assert np.array_equal(geometry.decode(anns[1].mask_rle), rect(24, 36, 32, 48))
    task["annotations"][0]["result"][0]["value"]["rle"] = [1, 2, 3]
    job = run_import(project, admin_user, "labelstudio", json_upload([task], "ls.json"))
    assert job.status == "failed" and job.errors[0]["item"] == "ls.json: task 3 region a"


@pytest.mark.django_db
def test_a_padded_rle_is_imported_in_its_canonical_form(target, admin_user):
    """Zero-length runs pad an RLE without limit: a 1-pixel mask came in as 5 MB and every read of
    the image carried it. Imports store the short form, as the API's writes do."""
    from pycocotools import mask as mask_utils

    project, _, _ = target
    before = 7 * H + 5
    padded = mask_utils.frPyObjects({"size": [H, W], "counts": [before, 1, H * W - before - 1] + [0] * 200_000}, H, W)
    doc = coco(segmentation={"size": [H, W], "counts": padded["counts"].decode("ascii")})
    job = run_import(project, admin_user, "coco", json_upload(doc))
    assert job.status == "done", job.errors
    stored = Annotation.objects.get(project=project)
    one = np.zeros((H, W), np.uint8, order="F")
    one[5, 7] = 1
    assert stored.mask_rle["counts"] == mask_utils.encode(one)["counts"].decode("ascii") and stored.area == 1


def test_an_exports_generated_name_in_another_project_gets_a_hint_saying_what_it_is(admin_user):
    """Black-box round 15: 'x_41.png' (how an export names one of two 'x.png' by its id there) was
    only "not in this project" in a new project holding both images as coll/a/x.png, coll/b/x.png."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.images.services import upload_images

    from ..factories import image_bytes, make_project
    from .helpers import json_upload, run_import

    project = make_project(admin_user, name="Dst")
    upload_images(project=project, user=admin_user, files=[
        SimpleUploadedFile("coll/a/x.png", image_bytes(64, 48, (1, 2, 3))),
        SimpleUploadedFile("coll/b/x.png", image_bytes(64, 48, (4, 5, 6)))])
    doc = {"images": [{"id": 1, "file_name": "x_987654.png", "width": 64, "height": 48},
                      {"id": 2, "file_name": "table_01.png", "width": 64, "height": 48}],
           "categories": [{"id": 1, "name": "blob"}],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 10, 10], "iscrowd": 0,
                            "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "area": 100} for i in (1, 2)]}
    job = run_import(project, admin_user, "coco", json_upload(doc), create_missing_classes=True)
    said = [e["error"] for e in job.errors]
    assert "image 'x_987654.png' (an export's name for one of several images called 'x.png', by its id in the " \
           "project exported) is not in this project" in said, said
    assert "image 'table_01.png' is not in this project" in said  # a name of its own: no such reading
    hints = [e["error"] for e in job.errors if e["item"] == "hint"]
    assert hints[0].startswith("2 items name images this project does not have")
    assert any("Names like 'x_987654.png' are how an export names images that share one name ('x.png'" in h
               for h in hints), job.errors
