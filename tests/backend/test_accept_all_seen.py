"""Accept-all approves only what the reviewer saw: the image's version does not move when its
objects are edited or added, so `version` alone let a reviewer approve an object changed (or
created) after they loaded the image (black-box report api4 #3)."""
import pytest

from backend.annotations.models import Annotation, ReviewState
from backend.projects.models import Role

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


def setup():
    owner = make_user("own")
    project = make_project(owner)
    annotator, reviewer = make_user("ann"), make_user("rev")
    add_member(project, annotator, Role.ANNOTATOR)
    add_member(project, reviewer, Role.REVIEWER)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    image = make_image(project)
    first = make_model_annotation(image, hammer)
    return project, image, annotator, reviewer, hammer, wrench, first


def test_an_object_changed_or_added_after_the_reviewer_looked_refuses_the_accept(client_for):
    project, image, annotator, reviewer, hammer, wrench, first = setup()
    base = f"/api/projects/{project.pk}"
    shown = client_for(reviewer).get(f"{base}/images/{image.pk}/").json()
    seen = [[a["id"], a["version"]] for a in shown["annotations"]]

    edit = client_for(annotator).patch(f"{base}/annotations/{first.pk}/", {"version": first.version, "label_class": wrench.pk},
                                      format="json")
    assert edit.status_code == 200, edit.content
    added = client_for(annotator).post(f"{base}/annotations/", {"image": image.pk, "label_class": wrench.pk,
                                                                "mask_rle": rect_rle(48, 64, 30, 30, 40, 40)}, format="json")
    assert added.status_code == 201, added.content
    # The image's own version (sent as it is now) does not tell these changes apart.
    image_version = client_for(reviewer).get(f"{base}/images/{image.pk}/").json()["version"]

    refused = client_for(reviewer).post(f"{base}/images/{image.pk}/accept-all/",
                                        {"version": image_version, "seen": seen}, format="json")
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert body["code"] == "version_conflict" and "2 objects" in body["detail"] and "nothing was accepted" in body["detail"]
    assert sorted(body["changed"]) == sorted([first.pk, added.json()["id"]])
    assert {c["id"]: c["label_class"] for c in body["current"]} == {first.pk: wrench.pk, added.json()["id"]: wrench.pk}
    assert not Annotation.objects.filter(image=image).exclude(mask_review=ReviewState.PENDING).exists(), "nothing accepted"

    # With what is there now, it goes through.
    again = client_for(reviewer).get(f"{base}/images/{image.pk}/").json()
    ok = client_for(reviewer).post(f"{base}/images/{image.pk}/accept-all/",
                                   {"seen": [[a["id"], a["version"]] for a in again["annotations"]]}, format="json")
    assert ok.status_code == 200, ok.content
    assert set(Annotation.objects.filter(image=image).values_list("mask_review", flat=True)) == {ReviewState.ACCEPTED}


def test_seen_is_checked_for_shape(client_for):
    project, image, _, reviewer, *_ , first = setup()
    url = f"/api/projects/{project.pk}/images/{image.pk}/accept-all/"
    for bad in ([[first.pk, 1], [first.pk, 1]], [[first.pk]], [[first.pk, 1, 2]], {"1": 1}, [["x", 1]]):
        response = client_for(reviewer).post(url, {"seen": bad}, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert "seen" in response.content.decode()
    assert Annotation.objects.get(pk=first.pk).mask_review == ReviewState.PENDING
    # Objects it would not change (already reviewed, or deleted meanwhile) need not be listed.
    assert client_for(reviewer).post(url, {"seen": [[first.pk, first.version], [999999, 1]]}, format="json").status_code == 200


def test_accepting_an_image_with_no_objects_marks_it_done_but_not_a_new_one(client_for):
    """It stayed pre-labeled and the queue offered it again and again (Enter bounced between two)."""
    from backend.images.models import Image, ImageStatus

    owner = make_user("own")
    project = make_project(owner)
    empty, new = make_image(project, seed=1), make_image(project, seed=2)
    Image.objects.filter(pk=empty.pk).update(status=ImageStatus.PRELABELED)
    base = f"/api/projects/{project.pk}/images"
    version = Image.objects.get(pk=empty.pk).version
    assert client_for(owner).post(f"{base}/{empty.pk}/accept-all/", {"seen": []}, format="json").status_code == 200
    done = Image.objects.get(pk=empty.pk)
    assert done.status == ImageStatus.DONE and done.version == version + 1
    assert client_for(owner).post(f"{base}/{new.pk}/accept-all/", {"seen": []}, format="json").status_code == 200
    assert Image.objects.get(pk=new.pk).status == ImageStatus.NEW
    # An object added later takes it back into review, as for any image.
    make_model_annotation(Image.objects.get(pk=empty.pk))
    from backend.annotations.status import refresh_statuses

    refresh_statuses([empty.pk])
    assert Image.objects.get(pk=empty.pk).status == ImageStatus.PRELABELED
