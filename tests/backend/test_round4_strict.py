"""Round 4 of the black-box report (api4 §9-13): strict numbers, read-only fields, write query
strings, the description cap, and polygons at the edge of the float range."""
from __future__ import annotations

import numpy as np
import pytest
from django.http import QueryDict
from hypothesis import given, settings, strategies as st
from pycocotools import mask as mask_utils

from backend.annotations.models import Annotation
from backend.core.geometry import GeometryError, polygons_to_rle, validate_polygons
from backend.projects.models import Project

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    owner = make_user("owner4")
    project = make_project(owner, "P4")
    image = make_image(project)
    cls = make_class(project, "hammer")
    other = make_class(project, "saw")
    return owner, project, image, cls, other


def _api(project) -> str:
    return f"/api/projects/{project.pk}/"


# ---------------------------------------------------------------- 10: strict integers


@pytest.mark.parametrize("version", ["1", " 1", 1.0, "٣", True, "1.0", None])
def test_an_annotation_version_must_be_a_json_integer(world, client_for, version):
    owner, project, image, cls, other = world
    ann = make_model_annotation(image, cls)
    r = client_for(owner).patch(f"{_api(project)}annotations/{ann.pk}/", {"version": version, "label_class": other.pk},
                                format="json")
    assert r.status_code == 400 and "version" in r.json(), r.content
    ann.refresh_from_db()
    assert ann.version == 1 and ann.label_class_id == cls.pk
    ok = client_for(owner).patch(f"{_api(project)}annotations/{ann.pk}/", {"version": 1, "label_class": other.pk},
                                 format="json")
    assert ok.status_code == 200, ok.content


@pytest.mark.parametrize("field,value", [("image", "IMG"), ("image", 1.0), ("image", True), ("label_class", "CLS"),
                                         ("label_class", 2.0)])
def test_annotation_create_ids_must_be_json_integers(world, client_for, field, value):
    owner, project, image, cls, other = world
    body = {"image": image.pk, "label_class": cls.pk, "polygons": [[1, 1, 20, 1, 10, 10]]}
    body[field] = {"IMG": str(image.pk), "CLS": str(cls.pk)}.get(value, value) if isinstance(value, str) else (
        float(image.pk if field == "image" else cls.pk) if isinstance(value, float) else value)
    r = client_for(owner).post(f"{_api(project)}annotations/", body, format="json")
    assert r.status_code == 400 and field in r.json(), r.content
    assert not Annotation.objects.filter(image=image).exists()


def test_project_top_k_must_be_a_json_integer(world, client_for):
    owner, project, *_ = world
    client = client_for(owner)
    for bad in ["5", 5.0, " 5", "٥"]:
        r = client.patch(_api(project), {"version": project.version, "top_k": bad}, format="json")
        assert r.status_code == 400 and "top_k" in r.json(), (bad, r.content)
    r = client.patch(_api(project), {"version": project.version, "top_k": 7}, format="json")
    assert r.status_code == 200 and r.json()["top_k"] == 7


@pytest.mark.parametrize("query", ["version=%D9%A1", "version=%201", "version=1.0", "version=+1"])
def test_a_query_version_is_ascii_digits(world, client_for, query):
    owner, project, image, cls, _ = world
    ann = make_model_annotation(image, cls)
    r = client_for(owner).delete(f"{_api(project)}annotations/{ann.pk}/?{query}")
    assert r.status_code == 400 and "version" in r.json(), r.content
    assert Annotation.objects.filter(pk=ann.pk).exists()


def test_a_body_version_on_delete_is_a_json_integer(world, client_for):
    owner, project, image, cls, _ = world
    ann = make_model_annotation(image, cls)
    client = client_for(owner)
    r = client.delete(f"{_api(project)}annotations/{ann.pk}/", {"version": "1"}, format="json")
    assert r.status_code == 400 and "version" in r.json(), r.content
    assert client.delete(f"{_api(project)}annotations/{ann.pk}/", {"version": 1}, format="json").status_code == 204


def test_form_bodies_still_take_ascii_digit_strings():
    """Multipart bodies carry strings: "3" and "true" still work there, "٣" and " 3" do not."""
    from backend.exchange.serializers import ImportRequestSerializer
    from backend.gallery.serializers import PruneSerializer

    def flag_errors(data):
        s = ImportRequestSerializer(data=data)
        s.is_valid()
        return set(s.errors) - {"file"}  # no file in these bodies

    assert flag_errors(QueryDict("format=coco&as_accepted=true&create_missing_classes=0")) == set()
    assert flag_errors(QueryDict("format=coco&as_accepted=yes")) == {"as_accepted"}
    assert flag_errors({"format": "coco", "as_accepted": "true"}) == {"as_accepted"}  # JSON: a boolean
    assert flag_errors({"format": "coco", "as_accepted": True}) == set()
    assert PruneSerializer(data=QueryDict("exemplar_ids=3&exemplar_ids=4")).is_valid()
    for bad in ["٣", " 3", "3.0"]:
        q = QueryDict(mutable=True)
        q.setlist("exemplar_ids", [bad])
        assert not PruneSerializer(data=q).is_valid(), bad
    assert not PruneSerializer(data={"exemplar_ids": ["3"]}).is_valid()


def test_gallery_label_class_in_a_form_is_ascii_digits(world, client_for):
    from .factories import image_bytes

    owner, project, *_ = world
    r = client_for(owner).post(f"{_api(project)}gallery/", {"files": [_file(image_bytes())], "label_class": "٣"},
                               format="multipart")
    assert r.status_code == 400 and "label_class" in r.json(), r.content


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("g.png", data, content_type="image/png")


# ---------------------------------------------------------------- 11: read-only fields, no-op writes


@pytest.mark.parametrize("field,value", [("gallery_version", 99), ("id", 5), ("my_role", "viewer"),
                                         ("created_at", "2020-01-01T00:00:00Z")])
def test_a_read_only_project_field_is_refused_by_name(world, client_for, field, value):
    owner, project, *_ = world
    r = client_for(owner).patch(_api(project), {"version": 1, field: value, "name": "Renamed"}, format="json")
    assert r.status_code == 400, r.content
    assert "read-only" in str(r.json()[field])
    project.refresh_from_db()
    assert project.version == 1 and project.name == "P4"


def test_read_only_fields_sent_back_as_read_are_fine_and_a_no_op_keeps_the_version(world, client_for):
    owner, project, *_ = world
    client = client_for(owner)
    read = client.get(_api(project)).json()
    body = {k: v for k, v in read.items()}
    r = client.patch(_api(project), body, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["version"] == read["version"] == 1  # nothing changed: no bump
    r = client.patch(_api(project), {"version": 1, "name": "P4"}, format="json")
    assert r.status_code == 200 and r.json()["version"] == 1
    r = client.patch(_api(project), {"version": 1, "name": "P5"}, format="json")
    assert r.status_code == 200 and r.json()["version"] == 2


def test_a_class_create_refuses_a_read_only_id_and_a_no_op_class_patch_keeps_the_version(world, client_for):
    owner, project, _, cls, _ = world
    client = client_for(owner)
    r = client.post(f"{_api(project)}classes/", {"name": "drill", "id": 5}, format="json")
    assert r.status_code == 400 and "read-only" in str(r.json()["id"]), r.content
    r = client.patch(f"{_api(project)}classes/{cls.pk}/", {"version": cls.version, "name": cls.name}, format="json")
    assert r.status_code == 200 and r.json()["version"] == cls.version


# ---------------------------------------------------------------- 12: write query strings


def test_a_repeated_version_on_delete_is_refused(world, client_for):
    owner, project, image, cls, _ = world
    ann = make_model_annotation(image, cls)
    r = client_for(owner).delete(f"{_api(project)}annotations/{ann.pk}/?version=2&version=1")
    assert r.status_code == 400 and "version" in r.json(), r.content
    assert Annotation.objects.filter(pk=ann.pk).exists()


@pytest.mark.parametrize("query,name", [("force=yes", "force"), ("force=1&force=0", "force"), ("forse=1", "forse"),
                                        ("force=", "force")])
def test_a_write_refuses_odd_query_values(world, client_for, query, name):
    owner, project, image, cls, _ = world
    body = {"image": image.pk, "label_class": cls.pk, "polygons": [[1, 1, 20, 1, 10, 10]]}
    r = client_for(owner).post(f"{_api(project)}annotations/?{query}", body, format="json")
    assert r.status_code == 400 and name in r.json(), r.content
    assert not Annotation.objects.filter(image=image).exists()


def test_a_write_takes_its_declared_flags(world, client_for):
    owner, project, image, cls, _ = world
    body = {"image": image.pk, "label_class": cls.pk, "polygons": [[1, 1, 20, 1, 10, 10]]}
    for query in ["force=0", "force=true", "force=1", ""]:
        r = client_for(owner).post(f"{_api(project)}annotations/?{query}", body, format="json")
        assert r.status_code == 201, (query, r.content)


def test_an_unknown_query_parameter_on_any_write_is_refused(world, client_for):
    owner, project, image, cls, _ = world
    client = client_for(owner)
    r = client.patch(f"{_api(project)}?dry_run=1", {"version": 1, "name": "X"}, format="json")
    assert r.status_code == 400 and "dry_run" in r.json(), r.content
    r = client.post(f"{_api(project)}classes/?color=red", {"name": "drill"}, format="json")
    assert r.status_code == 400 and "color" in r.json(), r.content
    assert Project.objects.get(pk=project.pk).name == "P4"
    assert not project.classes.filter(name="drill").exists()
    r = client.delete(f"{_api(project)}classes/{cls.pk}/?version=1&force=1")
    assert r.status_code == 400 and "force" in r.json(), r.content


# ---------------------------------------------------------------- 13: description cap


def test_a_project_description_is_capped(world, client_for):
    owner, project, *_ = world
    client = client_for(owner)
    r = client.patch(_api(project), {"version": 1, "description": "x" * 5001}, format="json")
    assert r.status_code == 400 and "5,000" in str(r.json()["description"]), r.content
    r = client.post("/api/projects/", {"name": "Big", "description": "x" * 1_000_000}, format="json")
    assert r.status_code == 400 and "description" in r.json()
    r = client.patch(_api(project), {"version": 1, "description": "x" * 5000}, format="json")
    assert r.status_code == 200 and len(r.json()["description"]) == 5000


# ---------------------------------------------------------------- 9: polygons at the float range's edge


def _area(poly, h=48, w=64):
    try:
        rle = polygons_to_rle(validate_polygons([poly], height=h, width=w), height=h, width=w)
    except GeometryError:
        return None
    return mask_utils.decode({"size": [h, w], "counts": rle["counts"].encode()})


def test_a_polygon_at_1e308_covering_the_image_is_the_whole_image(world, client_for):
    owner, project, image, cls, _ = world
    for s in (1e308, 1.7976931348623157e308, 1e300):
        mask = _area([s, s, -s, s, 0, -s])
        assert mask is not None and int(mask.sum()) == 64 * 48, s
    r = client_for(owner).post(f"{_api(project)}annotations/", {
        "image": image.pk, "label_class": cls.pk, "polygons": [[1e308, 1e308, -1e308, 1e308, 0, -1e308]]}, format="json")
    assert r.status_code == 201 and r.json()["area"] == 64 * 48, r.content


# Small integer vertices times a power of two are exact doubles, so each scale is the same shape:
# its edges through the origin (the image's corner) are the same lines, the others lie ~scale
# away from the image. The part inside the image is therefore the same at every such scale.
shapes = st.lists(st.tuples(st.integers(-15, 15), st.integers(-15, 15)), min_size=3, max_size=8)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(shape=shapes, size=st.tuples(st.integers(1, 40), st.integers(1, 40)))
def test_a_scaled_shape_clips_the_same_near_the_top_of_the_float_range(shape, size):
    h, w = size
    results = []
    for scale in (2.0**1019, 2.0**996, 2.0**40):  # ~1.1e307 x 15 = the top of the range; ~1e300; ~1e12
        poly = [float(v) * scale for xy in shape for v in xy]
        assert all(np.isfinite(poly))
        results.append(_area(poly, h, w))
    near_1e308, near_1e300, far = results
    for other in (near_1e300, far):
        assert (near_1e308 is None) == (other is None)
        if other is not None:
            assert (near_1e308 == other).all()
