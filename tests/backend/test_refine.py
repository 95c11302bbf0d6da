"""Click-refine: the real gpu worker (tiny SAM 2) answers a mask from clicks, keeps the image's
embedding so the next click does not run the image encoder, and writes nothing itself."""
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from backend.annotations.models import Annotation, AnnotationEvent
from backend.images.models import Image
from backend.projects.models import Role

from .factories import add_member, make_image, make_model_annotation, make_project, make_user, rect_rle, synthetic_png


def setup_image(owner):
    from backend.images.services import upload_images

    project = make_project(owner)
    report = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scene.png", synthetic_png(11))])
    return project, report.created[0]


def url(project, image) -> str:
    return f"/api/projects/{project.pk}/images/{image.pk}/refine/"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_refine_answers_a_mask_and_the_second_click_reuses_the_embedding(celery_worker, client_for):
    owner = make_user("refiner")
    project, image = setup_image(owner)
    client = client_for(owner)
    created = client.post(f"/api/projects/{project.pk}/annotations/",
                          {"image": image.pk, "label_class": None, "mask_rle": rect_rle(image.height, image.width, 10, 10, 60, 50)},
                          format="json")
    assert created.status_code == 201, created.content
    ann = created.json()
    events_before = AnnotationEvent.objects.filter(annotation_id=ann["id"]).count()

    first = client.post(url(project, image), {"points": [[30, 30]], "labels": [1], "annotation": ann["id"]}, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["mask_rle"]["size"] == [image.height, image.width]
    assert body["cached"] is False
    assert len(body["bbox"]) == 4 and 0.0 <= body["score"] <= 1.5 and body["ms"] > 0
    encodes = body["encoder_runs"]

    second = client.post(url(project, image), {"points": [[30, 30], [70, 45]], "labels": [1, 0], "annotation": ann["id"],
                                               "box": [5, 5, 90, 70]}, format="json")
    assert second.status_code == 200, second.content
    assert second.json()["cached"] is True
    assert second.json()["encoder_runs"] == encodes  # no image-encoder run for a cached image

    # A new object (no annotation): points only, same cached embedding.
    third = client.post(url(project, image), {"points": [[100, 60]], "labels": [1]}, format="json").json()
    assert third["cached"] is True and third["encoder_runs"] == encodes

    # Refining writes nothing: the browser saves through the versioned PATCH.
    stored = Annotation.objects.get(pk=ann["id"])
    assert stored.version == ann["version"] and stored.mask_rle == ann["mask_rle"]
    assert AnnotationEvent.objects.filter(annotation_id=ann["id"]).count() == events_before


@pytest.mark.django_db
@pytest.mark.parametrize("payload, field", [
    ({"points": [[-1, 5]], "labels": [1]}, "points"),
    ({"points": [[5, 49]], "labels": [1]}, "points"),  # the image is 64x48
    ({"points": [[5, "x"]], "labels": [1]}, "points"),
    ({"points": [[5]], "labels": [1]}, "points"),
    ({"points": [[5, 5]] * 65, "labels": [1] * 65}, "points"),
    ({"points": [[5, 5]], "labels": [2]}, "labels"),
    ({"points": [[5, 5]], "labels": [True]}, "labels"),
    ({"points": [[5, 5], [6, 6]], "labels": [1]}, "labels"),
    ({"points": [[5, 5]], "labels": [1], "box": [10, 10, 5, 5]}, "box"),
    ({"points": [[5, 5]], "labels": [1], "box": [100, 100, 200, 200]}, "box"),
    ({"points": [], "labels": []}, "points"),
])
def test_bad_prompts_are_400_naming_the_field(client_for, payload, field):
    owner = make_user("own")
    project = make_project(owner)
    image = make_image(project)
    response = client_for(owner).post(url(project, image), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.content.decode()


@pytest.mark.django_db
def test_roles_membership_and_claims(client_for):
    owner = make_user("own")
    project = make_project(owner)
    image = make_image(project)
    other_image = make_image(project, seed=3)
    ok = {"points": [[5, 5]], "labels": [1]}

    viewer = make_user("viewer")
    add_member(project, viewer, Role.VIEWER)
    assert client_for(viewer).post(url(project, image), ok, format="json").status_code == 403

    stranger = make_user("stranger")
    elsewhere = make_project(stranger, name="Elsewhere")
    assert client_for(stranger).post(url(project, image), ok, format="json").status_code == 404
    # Their own project's URL with this project's image: still 404.
    assert client_for(stranger).post(f"/api/projects/{elsewhere.pk}/images/{image.pk}/refine/", ok, format="json").status_code == 404

    # An annotation of another image is not a mask prompt for this one.
    foreign = make_model_annotation(other_image)
    missing = client_for(owner).post(url(project, image), {**ok, "annotation": foreign.pk}, format="json")
    assert missing.status_code == 404

    holder = make_user("holder")
    add_member(project, holder, Role.REVIEWER)
    Image.objects.filter(pk=image.pk).update(claimed_by=holder, claim_expires_at=timezone.now() + timedelta(minutes=5))
    claimed = client_for(owner).post(url(project, image), ok, format="json")
    assert claimed.status_code == 409 and claimed.json()["claimed_by"] == "holder"
    # Box-segment likewise: it answered a mask that the create call then refused (left alone, stop 27).
    segment = client_for(owner).post(f"/api/projects/{project.pk}/images/{image.pk}/segment/", {"box": [2, 2, 20, 20]},
                                     format="json")
    assert segment.status_code == 409 and segment.json()["claimed_by"] == "holder", segment.content
    assert "segmenting needs it free" in segment.json()["detail"]
