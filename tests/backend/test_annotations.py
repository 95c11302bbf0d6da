"""Optimistic locking, the audit trail and review state, through the API on the real database."""
import pytest
from django.db import connection, transaction

from backend.annotations.models import Annotation, AnnotationEvent

from .factories import make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client_for):
    owner = make_user("rev")
    project = make_project(owner)
    image = make_image(project)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    return client_for(owner), project, image, hammer, wrench


def url(project, *parts):
    return "/api/projects/{}/{}/".format(project.pk, "/".join(str(p) for p in parts))


def test_create_edit_review_delete_each_leave_exactly_one_event(setup):
    client, project, image, hammer, wrench = setup
    response = client.post(url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk, "mask_rle": rect_rle(image.height, image.width, 2, 3, 12, 9)}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["bbox"] == [2.0, 3.0, 10.0, 6.0] and created["area"] == 60 and created["source"] == "human"
    aid = created["id"]
    assert AnnotationEvent.objects.filter(annotation_id=aid).count() == 1

    edited = client.patch(url(project, "annotations", aid), {"version": 1, "label_class": wrench.pk}, format="json")
    assert edited.status_code == 200 and edited.json()["version"] == 2 and edited.json()["class_review"] == "accepted"
    assert AnnotationEvent.objects.filter(annotation_id=aid).count() == 2

    reviewed = client.post(url(project, "annotations", aid, "review"), {"version": 2, "target": "mask", "decision": "rejected"}, format="json")
    assert reviewed.status_code == 200 and reviewed.json()["mask_review"] == "rejected"
    assert AnnotationEvent.objects.filter(annotation_id=aid).count() == 3

    polygons = client.patch(url(project, "annotations", aid), {"version": 3, "polygons": [[0, 0, 10, 0, 10, 10, 0, 10]]}, format="json")
    assert polygons.status_code == 200 and polygons.json()["mask_review"] == "accepted"

    deleted = client.delete(url(project, "annotations", aid) + "?version=4")
    assert deleted.status_code == 204
    events = list(AnnotationEvent.objects.filter(annotation_id=aid).values_list("action", flat=True))
    assert events == ["created", "updated", "reviewed", "updated", "deleted"]
    trail = client.get(url(project, "images", image.pk, "events")).json()["results"]
    assert [e["action"] for e in trail] == events and trail[0]["actor"] == "rev"


def test_stale_version_is_409_and_changes_nothing(setup):
    client, project, image, hammer, wrench = setup
    annotation = make_model_annotation(image, hammer)
    fresh = client.patch(url(project, "annotations", annotation.pk), {"version": 1, "label_class": wrench.pk}, format="json")
    assert fresh.status_code == 200
    before = Annotation.objects.values().get(pk=annotation.pk)
    events_before = AnnotationEvent.objects.count()
    for method, path, body in [
        ("patch", url(project, "annotations", annotation.pk), {"version": 1, "label_class": hammer.pk}),
        ("post", url(project, "annotations", annotation.pk, "review"), {"version": 1, "target": "class", "decision": "rejected"}),
        ("delete", url(project, "annotations", annotation.pk) + "?version=1", None),
    ]:
        response = getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
        assert response.status_code == 409, response.content
        body = response.json()
        assert body["code"] == "version_conflict" and "changed by someone else" in body["detail"]
        assert body["current"]["version"] == 2 and body["current"]["label_class"] == wrench.pk
    assert Annotation.objects.values().get(pk=annotation.pk) == before
    assert AnnotationEvent.objects.count() == events_before


def test_missing_version_is_refused(setup):
    client, project, image, hammer, _ = setup
    annotation = make_model_annotation(image, hammer)
    response = client.delete(url(project, "annotations", annotation.pk))
    assert response.status_code == 400 and "version" in response.json()["detail"]


def test_bad_masks_are_refused_with_a_message(setup):
    client, project, image, hammer, _ = setup
    cases = [
        ({"size": [1, 1], "counts": "0"}, "does not match the image size"),
        ({"size": [image.height, image.width], "counts": [5, 5]}, "sum to height*width"),
        ({"size": [image.height, image.width], "counts": [image.height * image.width]}, "empty"),
        ({"size": [image.height, image.width], "counts": 42}, "string"),
    ]
    for mask, message in cases:
        response = client.post(url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk, "mask_rle": mask}, format="json")
        assert response.status_code == 400 and message in response.json()["detail"], (mask, response.content)
    assert Annotation.objects.count() == 0


def test_accept_all_marks_image_done(setup):
    client, project, image, hammer, wrench = setup
    a = make_model_annotation(image, hammer)
    b = make_model_annotation(image, wrench)
    seen = [[a.pk, a.version], [b.pk, b.version]]
    response = client.post(url(project, "images", image.pk, "accept-all"), {"seen": seen}, format="json")
    assert response.status_code == 200 and len(response.json()) == 2
    assert set(Annotation.objects.filter(pk__in=[a.pk, b.pk]).values_list("class_review", "mask_review")) == {("accepted", "accepted")}
    image.refresh_from_db()
    assert image.status == "done"
    assert AnnotationEvent.objects.filter(image=image, action="reviewed").count() == 2


def test_audit_events_cannot_be_rewritten(setup):
    client, project, image, hammer, _ = setup
    client.post(url(project, "annotations"), {"image": image.pk, "label_class": hammer.pk, "polygons": [[1, 1, 8, 1, 8, 8]]}, format="json")
    event = AnnotationEvent.objects.get()
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE annotations_annotationevent SET action = 'deleted' WHERE id = %s", [event.pk])
    assert AnnotationEvent.objects.get().action == "created"


def test_claims_and_review_queue(client_for):
    owner, other = make_user("a-rev"), make_user("b-rev")
    project = make_project(owner)
    from backend.projects.models import Membership

    Membership.objects.create(project=project, user=other, role="reviewer")
    hammer = make_class(project, "hammer")
    clear, ambiguous = make_image(project, seed=1), make_image(project, seed=2)
    make_model_annotation(clear, hammer, class_margin=0.5)
    make_model_annotation(ambiguous, hammer, class_margin=0.01)
    for image in (clear, ambiguous):
        image.status = "prelabeled"
        image.save()
    a, b = client_for(owner), client_for(other)
    nxt = a.get(f"/api/projects/{project.pk}/images/next/")
    assert nxt.status_code == 200 and nxt.json()["id"] == ambiguous.pk, "most ambiguous first"
    assert a.post(f"/api/projects/{project.pk}/images/{ambiguous.pk}/claim/").status_code == 200
    conflict = b.post(f"/api/projects/{project.pk}/images/{ambiguous.pk}/claim/")
    assert conflict.status_code == 409 and conflict.json()["claimed_by"] == "a-rev"
    assert b.get(f"/api/projects/{project.pk}/images/next/").json()["id"] == clear.pk, "claimed images are skipped"
    assert b.get(f"/api/projects/{project.pk}/images/{ambiguous.pk}/").json()["claimed_by"] == "a-rev"
    assert b.delete(f"/api/projects/{project.pk}/images/{ambiguous.pk}/claim/").status_code == 403
    assert a.delete(f"/api/projects/{project.pk}/images/{ambiguous.pk}/claim/").status_code == 200
    assert b.post(f"/api/projects/{project.pk}/images/{ambiguous.pk}/claim/").status_code == 200
    assert b.get(f"/api/projects/{project.pk}/images/next/?after={ambiguous.pk},{clear.pk}").status_code == 204
    assert a.get(f"/api/projects/{project.pk}/images/next/?owner__password=x").status_code == 400


def test_fast_detail_rows_match_the_serializer(setup):
    from backend.annotations.selectors import annotation_rows, annotations_of_image
    from backend.annotations.serializers import AnnotationSerializer

    client, project, image, hammer, _ = setup
    make_model_annotation(image, hammer, candidates=[{"class_id": hammer.pk, "name": "hammer", "score": 0.9, "exemplar_id": None}])
    make_model_annotation(image, None)
    expected = [dict(row) for row in AnnotationSerializer(annotations_of_image(image), many=True).data]
    assert annotation_rows(image) == expected
    assert client.get(url(project, "images", image.pk)).json()["annotations"] == expected


def test_login_and_token_auth(db, client):
    from .factories import make_user as mk

    mk("tok", password="secret-pass-1")
    bad = client.post("/api/auth/login/", {"username": "tok", "password": "nope"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_credentials"
    token = client.post("/api/auth/token/", {"username": "tok", "password": "secret-pass-1"}, content_type="application/json").json()["token"]
    from rest_framework.test import APIClient

    api = APIClient()
    assert api.get("/api/projects/").status_code in (401, 403)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/projects/").status_code == 200
    assert api.post("/api/projects/", {"name": "Scripted"}, format="json").status_code == 201
