"""Messages a new user read with internal wording in them (round 4): an import's malformed JSON
came as yajl's raw text ("lexical error: invalid string in json text. … (right here) ------^"),
an unknown class named the API's option (create_missing_classes) instead of the checkbox, and a
class that could not be deleted did not say how many objects held it or what to do."""
from __future__ import annotations

import pytest

from backend.exchange.formats.base import malformed_message
from backend.gallery.models import GalleryImage
from backend.projects.models import LabelClass

from .exchange.helpers import json_upload, run_import
from .factories import image_bytes, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    owner = make_user("owner")
    project = make_project(owner)
    make_class(project, "hammer")
    image = make_image(project, seed=1)
    return project, owner, image


@pytest.mark.parametrize("fmt", ["coco", "labelme", "native", "labelstudio"])
@pytest.mark.parametrize("doc, expected", [
    (b'{\n  "images": [\n    {"id": 1 "file_name": "a.png"}\n  ]\n}', "a comma is missing at line 3, column 14"),
    (b'{"images": [{"id": 1, "file_name": "a\x01.png"}]}', "a control character (such as a raw line break) inside a string at line 1, column 38"),
    (b'{"images": [1, 2,, 3]}', "a missing or invalid value at line 1, column 18"),
    (b'{"images": [', "the file ends before the JSON document does (cut short?), at line 1, column 13"),
])
def test_malformed_json_says_what_and_where_in_plain_words(setup, fmt, doc, expected):
    project, owner, _ = setup
    job = run_import(project, owner, fmt, json_upload(doc, name="bad.json"))
    assert job.status == "failed"
    [error] = [e["error"] for e in job.errors]
    assert error == f"malformed JSON: {expected}", error
    for raw in ("lexical error", "parse error", "right here", "------^", "json text"):
        assert raw not in error


def test_a_document_too_big_to_locate_again_still_gets_a_short_plain_reason():
    import io

    import ijson

    try:
        for _ in ijson.items(io.BytesIO(b'{"a": "b\x01c"}'), "\x00"):
            pass
    except ijson.JSONError as exc:
        message = malformed_message(exc, b'{"a": ')  # no document handed in: not located
    assert message == "malformed JSON: invalid character inside string", message


def test_an_unknown_class_names_the_checkbox_not_the_api_option(setup):
    project, owner, image = setup
    doc = {"images": [{"id": 7, "file_name": image.original_name}], "categories": [{"id": 1, "name": "saw"}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 1, 4, 4]}]}
    job = run_import(project, owner, "coco", json_upload(doc))
    assert job.status == "failed"
    [error] = [e["error"] for e in job.errors]
    assert error == "unknown class 'saw': tick “Create missing classes” to create it", error
    assert "create_missing_classes" not in error


def test_deleting_a_class_in_use_says_how_many_objects_hold_it_and_what_to_do(client_for, setup):
    project, owner, image = setup
    hammer = LabelClass.objects.get(project=project, name="hammer")
    make_model_annotation(image, hammer)
    make_model_annotation(image, hammer)
    response = client_for(owner).delete(f"/api/projects/{project.pk}/classes/{hammer.pk}/?version={hammer.version}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "class_in_use" and body["objects"] == 2
    assert "2 objects labelled with it" in body["detail"] and "give those objects another class" in body["detail"]
    assert LabelClass.objects.filter(pk=hammer.pk).exists()


def test_deleting_a_type_with_instances_names_them(client_for, setup):
    project, owner, _ = setup
    hammer = LabelClass.objects.get(project=project, name="hammer")
    make_class(project, "hammer-7", kind="instance", parent=hammer)
    response = client_for(owner).delete(f"/api/projects/{project.pk}/classes/{hammer.pk}/?version={hammer.version}")
    assert response.status_code == 400
    assert response.json()["code"] == "class_has_instances"
    assert "has instances ('hammer-7')" in response.json()["detail"]


def test_deleting_an_unused_class_takes_its_exemplars_with_it_and_checks_the_version(client_for, setup):
    project, owner, _ = setup
    spare = make_class(project, "spare")
    client = client_for(owner)
    upload = client.post(f"/api/projects/{project.pk}/gallery/",
                         {"files": [_file("s.png")], "label_class": spare.pk}, format="multipart")
    assert upload.status_code in (200, 201), upload.content[:300]
    assert GalleryImage.objects.filter(label_class=spare).exists()
    stale = client.delete(f"/api/projects/{project.pk}/classes/{spare.pk}/?version={spare.version + 5}")
    assert stale.status_code == 409
    assert client.delete(f"/api/projects/{project.pk}/classes/{spare.pk}/?version={spare.version}").status_code == 204
    assert not LabelClass.objects.filter(pk=spare.pk).exists()
    assert not GalleryImage.objects.filter(project=project, label_class_id=spare.pk).exists()
    # Another project's member cannot delete this project's classes.
    outsider = make_user("outsider")
    other = make_class(project, "other")
    assert client_for(outsider).delete(f"/api/projects/{project.pk}/classes/{other.pk}/?version={other.version}").status_code in (403, 404)
    assert LabelClass.objects.filter(pk=other.pk).exists()


def _file(name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, image_bytes(32, 32, (5, 100, 5)), content_type="image/png")
