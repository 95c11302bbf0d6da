"""Deleting several images at once (black-box round 14: clearing 200 images took 200 clicks and
200 confirms): admins only, all or none, versions checked, files and job counts follow."""
import pytest
from django.core.files.storage import default_storage

from backend.annotations.models import Annotation
from backend.images.models import Image

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


def _url(project):
    return f"/api/projects/{project.pk}/images/delete/"


def test_an_admin_deletes_several_images_with_their_objects_and_files(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    hammer = make_class(project, "hammer")
    images = [make_image(project, seed=s) for s in range(4)]
    make_model_annotation(images[0], hammer)
    files = [images[0].file.name, images[1].file.name]
    answer = client_for(owner).post(_url(project), {"images": [[im.pk, im.api_version] for im in images[:2]]}, format="json")
    assert answer.status_code == 200 and answer.json() == {"deleted": sorted(im.pk for im in images[:2])}, answer.content
    assert sorted(Image.objects.filter(project=project).values_list("pk", flat=True)) == [images[2].pk, images[3].pk]
    assert not Annotation.objects.filter(image_id=images[0].pk).exists()
    assert all(default_storage.exists(n) for n in files)  # removed after commit (none here: a rolled-back test)


def test_a_stale_or_foreign_image_refuses_the_whole_call(client_for):
    owner = make_user("owner")
    project, other = make_project(owner), make_project(owner, name="Other")
    mine = [make_image(project, seed=s) for s in range(2)]
    theirs = make_image(other, seed=9)
    client = client_for(owner)
    stale = client.post(_url(project), {"images": [[mine[0].pk, mine[0].version], [mine[1].pk, mine[1].version + 1]]},
                        format="json")
    assert stale.status_code == 409 and stale.json()["changed"] == [mine[1].pk], stale.content
    foreign = client.post(_url(project), {"images": [[mine[0].pk, mine[0].version], [theirs.pk, theirs.version]]},
                          format="json")
    assert foreign.status_code == 404 and str(theirs.pk) in foreign.json()["detail"], foreign.content
    assert Image.objects.filter(pk__in=[mine[0].pk, mine[1].pk, theirs.pk]).count() == 3
    for body in ({}, {"images": []}, {"images": [[mine[0].pk, 1], [mine[0].pk, 1]]}, {"images": [[mine[0].pk]]}):
        assert client.post(_url(project), body, format="json").status_code == 400, body


def test_only_admins_delete_images(client_for):
    owner, rita = make_user("owner"), make_user("rita")
    project = make_project(owner)
    add_member(project, rita, "reviewer")
    image = make_image(project)
    answer = client_for(rita).post(_url(project), {"images": [[image.pk, image.version]]}, format="json")
    assert answer.status_code == 403
    assert Image.objects.filter(pk=image.pk).exists()


def test_a_change_to_an_images_objects_refuses_a_delete_made_with_the_listed_version(client_for):
    """Black-box round 15: five objects added to an image in review, a mask edited on another, an
    object deleted on a third, and the list still showed each "at version 2": the bulk delete (and
    DELETE ?version=) with those versions took the work nobody had seen. The version the API shows
    moves with the image's objects (images/versions.py)."""
    from .factories import rect_rle

    owner = make_user("owner")
    annotator = make_user("ann")
    project = make_project(owner)
    add_member(project, annotator, "annotator")
    hammer = make_class(project, "hammer")
    images = [make_image(project, seed=s) for s in range(4)]
    objects = [make_model_annotation(im, hammer) for im in images[:3]]
    admin, worker = client_for(owner), client_for(annotator)
    listed = {row["id"]: row["version"] for row in admin.get(f"/api/projects/{project.pk}/images/").json()["results"]}
    detail = admin.get(f"/api/projects/{project.pk}/images/{images[0].pk}/").json()
    assert detail["version"] == listed[images[0].pk]  # the detail shows the same version as the list

    base = f"/api/projects/{project.pk}/annotations/"
    added = worker.post(base, {"image": images[0].pk, "label_class": hammer.pk,
                               "mask_rle": rect_rle(images[0].height, images[0].width, 30, 20, 40, 30)}, format="json")
    assert added.status_code == 201, added.content
    edited = worker.patch(f"{base}{objects[1].pk}/", {"version": objects[1].version,
                                                      "mask_rle": rect_rle(images[1].height, images[1].width, 1, 1, 9, 9)},
                          format="json")
    assert edited.status_code == 200, edited.content
    gone = worker.delete(f"{base}{objects[2].pk}/?version={objects[2].version}")
    assert gone.status_code == 204, gone.content

    stale = admin.post(_url(project), {"images": [[pk, listed[pk]] for pk in listed]}, format="json")
    assert stale.status_code == 409, stale.content
    assert stale.json()["changed"] == sorted(im.pk for im in images[:3])
    single = admin.delete(f"/api/projects/{project.pk}/images/{images[0].pk}/?version={listed[images[0].pk]}")
    assert single.status_code == 409 and "changed since you read it" in single.json()["detail"]
    assert Image.objects.filter(project=project).count() == 4
    # Read again, the same deletes go through; the untouched image's listed version was right all along.
    fresh = {row["id"]: row["version"] for row in admin.get(f"/api/projects/{project.pk}/images/").json()["results"]}
    assert fresh[images[3].pk] == listed[images[3].pk]
    done = admin.post(_url(project), {"images": [[pk, fresh[pk]] for pk in fresh]}, format="json")
    assert done.status_code == 200 and not Image.objects.filter(project=project).exists()


def test_an_image_someone_holds_is_deleted_only_when_forced(client_for):
    """Black-box round 15: an admin's edits on an image a reviewer holds are refused (409, or
    ?force=1), but deleting it, alone or in a batch, went ahead without a word."""
    from datetime import timedelta

    from django.utils import timezone

    owner, reviewer = make_user("owner"), make_user("rita")
    project = make_project(owner)
    add_member(project, reviewer, "reviewer")
    held, free = make_image(project, seed=1), make_image(project, seed=2)
    Image.objects.filter(pk=held.pk).update(claimed_by=reviewer, claim_expires_at=timezone.now() + timedelta(minutes=5))
    admin = client_for(owner)
    versions = {row["id"]: row["version"] for row in admin.get(f"/api/projects/{project.pk}/images/").json()["results"]}
    pairs = [[pk, v] for pk, v in versions.items()]
    bulk = admin.post(_url(project), {"images": pairs}, format="json")
    assert bulk.status_code == 409 and bulk.json()["code"] == "claimed", bulk.content
    assert bulk.json()["claimed"] == [{"image": held.pk, "claimed_by": "rita"}]
    assert "open by someone now" in bulk.json()["detail"] and "(rita)" in bulk.json()["detail"]
    single = admin.delete(f"/api/projects/{project.pk}/images/{held.pk}/?version={versions[held.pk]}")
    assert single.status_code == 409 and single.json()["claimed"][0]["claimed_by"] == "rita"
    assert Image.objects.filter(project=project).count() == 2
    forced = admin.delete(f"/api/projects/{project.pk}/images/{held.pk}/?version={versions[held.pk]}&force=1")
    assert forced.status_code == 204, forced.content
    assert admin.post(_url(project) + "?force=1", {"images": [[free.pk, versions[free.pk]]]}, format="json").status_code == 200
    assert not Image.objects.filter(project=project).exists()
