"""Label Studio regions the importer cannot make a mask of are item errors, not silently left
out (black-box api6 F7: a task with a polygon, an ellipse and a keypoint imported one object,
"done"); ellipses are drawn as their outline."""
import numpy as np
import pytest

from backend.annotations.models import Annotation
from backend.exchange import geometry

from ..factories import make_class, make_image, make_project
from .helpers import json_upload, run_import

pytestmark = pytest.mark.django_db


def _task(image, *regions):
    return [{"id": 1, "data": {"image": f"/data/upload/1/{image.original_name}"},
             "annotations": [{"result": list(regions)}]}]


def _region(kind, value, rid="r1"):
    return {"id": rid, "type": kind, "from_name": "tag", "to_name": "image", "original_width": 200,
            "original_height": 100, "value": value}


@pytest.fixture
def setup(admin_user):
    project = make_project(admin_user, name="LS")
    make_class(project, "hammer")
    return project, make_image(project, width=200, height=100, seed=3)


def test_a_keypoint_region_is_an_item_error_and_nothing_is_written(setup, admin_user):
    project, image = setup
    doc = _task(image,
                _region("polygonlabels", {"points": [[10, 10], [40, 10], [40, 40]], "polygonlabels": ["hammer"]}),
                _region("keypointlabels", {"x": 50, "y": 50, "width": 1, "keypointlabels": ["hammer"]}, rid="k1"))
    job = run_import(project, admin_user, "labelstudio", json_upload(doc, name="ls.json"))
    assert job.status == "failed"
    assert job.errors == [{"item": "ls.json: task 1 region k1",
                           "error": "keypointlabels regions are not supported (brush, rectangle, polygon and ellipse "
                                    "labels are): remove them or convert them first"}]
    assert not Annotation.objects.filter(project=project).exists()


def test_an_ellipse_becomes_its_outline(setup, admin_user):
    project, image = setup
    # centre (100, 50) px; radiusX 20 % of 200 = 40 px, radiusY 20 % of 100 = 20 px; turned a quarter
    doc = _task(image, _region("ellipselabels", {"x": 50, "y": 50, "radiusX": 20, "radiusY": 20, "rotation": 90,
                                                 "ellipselabels": ["hammer"]}))
    job = run_import(project, admin_user, "labelstudio", json_upload(doc, name="ls.json"))
    assert job.status == "done", job.errors
    ann = Annotation.objects.get(project=project)
    mask = geometry.decode(ann.mask_rle)
    ys, xs = np.nonzero(mask)
    # turned a quarter: 40 px up and down, 20 px left and right
    assert (xs.min(), xs.max()) == pytest.approx((80, 120), abs=1)
    assert (ys.min(), ys.max()) == pytest.approx((10, 90), abs=1)
    assert int(mask.sum()) == pytest.approx(np.pi * 40 * 20, rel=0.05)


def test_an_ellipse_needs_positive_radii(setup, admin_user):
    project, image = setup
    doc = _task(image, _region("ellipselabels", {"x": 50, "y": 50, "radiusX": 0, "radiusY": 20, "ellipselabels": ["hammer"]}))
    job = run_import(project, admin_user, "labelstudio", json_upload(doc, name="ls.json"))
    assert job.status == "failed" and "positive radiusX" in job.errors[0]["error"]


def test_a_bare_ellipse_region_says_it_lacks_its_label(setup, admin_user):
    project, image = setup
    doc = _task(image, _region("ellipse", {"x": 50, "y": 50, "radiusX": 20, "radiusY": 20}))
    job = run_import(project, admin_user, "labelstudio", json_upload(doc, name="ls.json"))
    assert job.status == "failed"
    assert job.errors[0]["error"] == ("a ellipse region without a label is not supported: label it in the same region "
                                      "(ellipselabels)")
