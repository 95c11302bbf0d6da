"""The image detail's objects are served from a per-process cache of their rendered JSON, keyed by
a fingerprint of the rows: every kind of change must show on the next read."""
import json

import pytest

from backend.annotations import selectors
from backend.annotations.serializers import AnnotationSerializer

from .factories import make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client_for):
    owner = make_user("lead")
    project = make_project(owner)
    image = make_image(project)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    return client_for(owner), project, image, hammer, wrench


def detail(client, project, image) -> list[dict]:
    response = client.get(f"/api/projects/{project.pk}/images/{image.pk}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()["annotations"]


def expected(image) -> list[dict]:
    return [dict(r) for r in AnnotationSerializer(selectors.annotations_of_image(image), many=True).data]


def test_every_change_shows_on_the_next_read(setup):
    client, project, image, hammer, wrench = setup
    base = f"/api/projects/{project.pk}"
    first = make_model_annotation(image, hammer)
    assert detail(client, project, image) == expected(image)
    assert selectors._cache[image.pk][1] == selectors.annotation_rows_json(image)  # cached now

    client.patch(f"{base}/annotations/{first.pk}/", {"version": 1, "label_class": wrench.pk}, format="json")
    assert detail(client, project, image)[0]["class_name"] == "wrench"
    client.post(f"{base}/annotations/{first.pk}/review/", {"version": 2, "target": "mask", "decision": "rejected"}, format="json")
    assert detail(client, project, image)[0]["mask_review"] == "rejected"

    created = client.post(f"{base}/annotations/", {"image": image.pk, "label_class": hammer.pk,
                                                   "mask_rle": rect_rle(48, 64, 1, 1, 5, 5)}, format="json").json()
    assert [a["id"] for a in detail(client, project, image)] == [first.pk, created["id"]]
    client.delete(f"{base}/annotations/{created['id']}/?version=1")
    assert [a["id"] for a in detail(client, project, image)] == [first.pk]

    # A class renamed elsewhere: the object's row is untouched, its class name is not.
    response = client.patch(f"{base}/classes/{wrench.pk}/", {"version": wrench.version, "name": "spanner"}, format="json")
    assert response.status_code == 200, response.content
    assert detail(client, project, image)[0]["class_name"] == "spanner"
    assert detail(client, project, image) == expected(image)


def test_an_emptied_image_and_the_image_fields_are_never_cached(setup):
    client, project, image, hammer, _ = setup
    only = make_model_annotation(image, hammer)
    assert len(detail(client, project, image)) == 1
    client.delete(f"/api/projects/{project.pk}/annotations/{only.pk}/?version=1")
    body = client.get(f"/api/projects/{project.pk}/images/{image.pk}/").json()
    assert body["annotations"] == [] and body["status"] == image.status
    assert client.post(f"/api/projects/{project.pk}/images/{image.pk}/claim/").status_code == 200
    assert client.get(f"/api/projects/{project.pk}/images/{image.pk}/").json()["claimed_by"] == "lead"


def test_rendered_json_is_what_the_serializer_gives(setup):
    client, project, image, hammer, _ = setup
    make_model_annotation(image, hammer, candidates=[{"class_id": hammer.pk, "name": "молоток", "score": 0.9, "exemplar_id": None}])
    make_model_annotation(image, None)
    assert json.loads(selectors.annotation_rows_json(image)) == expected(image)
