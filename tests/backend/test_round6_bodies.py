"""JSON writes take JSON only; files go where files are taken (black-box api5 F-D).

A form post reached every JSON write: a form field is always a string, so `label_class=""`
cleared an object's class while the same JSON body was refused."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.gallery.models import GalleryImage

from .factories import image_bytes, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    owner = make_user("owner6")
    project = make_project(owner, "P6")
    image = make_image(project)
    cls = make_class(project, "hammer")
    return owner, project, image, cls


def test_a_form_post_cannot_clear_an_objects_class(world, client_for):
    owner, project, image, cls = world
    ann = make_model_annotation(image, cls)
    r = client_for(owner).patch(f"/api/projects/{project.pk}/annotations/{ann.pk}/",
                                {"version": "1", "label_class": ""}, format="multipart")
    assert r.status_code == 415, r.content
    assert r.json()["detail"] == ("This request takes a JSON (Content-Type: application/json) body; "
                                  "it was sent as multipart/form-data.")
    ann.refresh_from_db()
    assert ann.label_class_id == cls.pk and ann.version == 1


@pytest.mark.parametrize("route, body", [
    ("projects/", {"name": "from a form"}),
    ("projects/{p}/classes/", {"name": "saw"}),
    ("projects/{p}/jobs/", {"kind": "prelabel"}),
])
def test_json_writes_refuse_forms(world, client_for, route, body):
    owner, project, image, cls = world
    r = client_for(owner).post("/api/" + route.format(p=project.pk), body, format="multipart")
    assert r.status_code == 415 and "JSON" in r.json()["detail"], r.content


def test_sign_in_refuses_a_form(world, client):
    r = client.post("/api/auth/token/", {"username": "owner6", "password": "x"}, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415, r.content


def test_file_uploads_still_take_forms_and_say_what_they_want(world, client_for):
    owner, project, image, cls = world
    api = client_for(owner)
    ok = api.post(f"/api/projects/{project.pk}/gallery/",
                  {"label_class": cls.pk, "files": [SimpleUploadedFile("g.png", image_bytes(9, 9, (1, 2, 3)))]},
                  format="multipart")
    assert ok.status_code == 201, ok.content
    assert GalleryImage.objects.filter(label_class=cls).count() == 1
    wrong = api.post(f"/api/projects/{project.pk}/gallery/", {"label_class": cls.pk}, format="json")
    assert wrong.status_code == 415, wrong.content
    assert "multipart/form-data" in wrong.json()["detail"] and "application/json" in wrong.json()["detail"]
    # the same viewset's JSON action keeps JSON
    exemplar = GalleryImage.objects.get(label_class=cls)
    prune = api.post(f"/api/projects/{project.pk}/gallery/prune/", {"exemplar_ids": [exemplar.pk]}, format="json")
    assert prune.status_code == 200, prune.content
    assert GalleryImage.objects.get(pk=exemplar.pk).removed_at is not None


def test_a_bodyless_action_takes_an_empty_form_and_refuses_a_form_with_fields(world, client_for):
    """Django's test client (and a plain form) post "no body" as an empty multipart form: sign-out
    answered 415 to it."""
    owner, project, image, cls = world
    url = f"/api/projects/{project.pk}/images/{image.pk}/claim/"
    assert client_for(owner).post(url, {}, format="multipart").status_code == 200
    assert client_for(owner).post(url, {"user": "x"}, format="multipart").status_code == 415
