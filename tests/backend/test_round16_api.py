"""Black-box round 16 (API): answers that broke the OpenAPI schema, member role writes without a
version, read-only fields sent back."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation
from backend.images.models import Image

from .factories import image_bytes, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


def test_next_and_a_plain_upload_count_the_images_objects(client_for):
    """images/next/ and the upload's `created` answered annotation_count / pending_count null
    where the schema says integer (the detail route was mended in round 15)."""
    owner = make_user("counts")
    project = make_project(owner)
    image = make_image(project, seed=1)
    tool = make_class(project, "tool")
    make_model_annotation(image, tool)
    done = make_model_annotation(image, tool)
    Annotation.objects.filter(pk=done.pk).update(class_review="accepted", mask_review="accepted")
    Image.objects.filter(pk=image.pk).update(status="in_review")
    nxt = client_for(owner).get(f"/api/projects/{project.pk}/images/next/")
    assert nxt.status_code == 200, nxt.content
    assert (nxt.json()["annotation_count"], nxt.json()["pending_count"]) == (2, 1)

    upload = SimpleUploadedFile("fresh.png", image_bytes(color=(1, 2, 3)), content_type="image/png")
    made = client_for(owner).post(f"/api/projects/{project.pk}/images/", {"files": [upload]}, format="multipart")
    assert made.status_code == 201, made.content
    (created,) = made.json()["created"]
    assert (created["annotation_count"], created["pending_count"]) == (0, 0)


def test_a_role_change_from_a_stale_member_list_is_a_conflict(client_for):
    """A member's role had no version: an admin working from a stale list silently undid another
    admin's demotion (200), and `version` was an unknown field."""
    from backend.projects.models import Membership

    from .factories import add_member

    anna, oleg, vic = make_user("anna"), make_user("oleg"), make_user("vic")
    project = make_project(anna)
    add_member(project, oleg, "admin")
    member = add_member(project, vic, "annotator")
    url = f"/api/projects/{project.pk}/members/{member.pk}/"
    listed = {m["id"]: m for m in client_for(anna).get(f"/api/projects/{project.pk}/members/").json()["results"]}
    assert listed[member.pk]["version"] == 1
    demoted = client_for(oleg).patch(url, {"role": "viewer", "version": 1}, format="json")
    assert demoted.status_code == 200 and demoted.json()["version"] == 2
    stale = client_for(anna).patch(url, {"role": "reviewer", "version": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["current_version"] == 2, stale.content
    assert client_for(anna).patch(url, {"role": "reviewer"}, format="json").status_code == 400  # version required
    assert client_for(anna).delete(f"{url}?version=1").status_code == 409
    assert Membership.objects.get(pk=member.pk).role == "viewer"
    assert client_for(anna).delete(f"{url}?version=2").status_code == 204


def test_a_client_may_send_back_what_it_read_for_classes_objects_and_members(client_for):
    """Black-box round 16: the README's "send back what you read" held for projects only; a class,
    an object or a member sent back as read was "Unknown field" for its own `id`."""
    from .factories import add_member

    owner, vic = make_user("echo"), make_user("vic")
    project = make_project(owner)
    member = add_member(project, vic, "annotator")
    tool, saw = make_class(project, "tool"), make_class(project, "saw")
    obj = make_model_annotation(make_image(project, seed=3), tool)
    api = client_for(owner)
    base = f"/api/projects/{project.pk}"

    read = api.get(f"{base}/classes/{tool.pk}/").json()
    sent = api.patch(f"{base}/classes/{tool.pk}/", {**read, "name": "hammer"}, format="json")
    assert sent.status_code == 200 and sent.json()["name"] == "hammer", sent.content
    wrong = api.patch(f"{base}/classes/{tool.pk}/", {**sent.json(), "id": saw.pk, "name": "tool"}, format="json")
    assert wrong.status_code == 400 and "`id` is read-only" in wrong.json()["id"][0], wrong.content

    read = api.get(f"{base}/annotations/{obj.pk}/").json()
    sent = api.patch(f"{base}/annotations/{obj.pk}/", {**read, "label_class": saw.pk}, format="json")
    assert sent.status_code == 200 and sent.json()["label_class"] == saw.pk, sent.content
    wrong = api.patch(f"{base}/annotations/{obj.pk}/", {**sent.json(), "area": 1}, format="json")
    assert wrong.status_code == 400 and "`area` is read-only" in wrong.json()["area"][0], wrong.content

    read = next(m for m in api.get(f"{base}/members/").json()["results"] if m["id"] == member.pk)
    sent = api.patch(f"{base}/members/{member.pk}/", {**read, "role": "reviewer"}, format="json")
    assert sent.status_code == 200 and sent.json()["role"] == "reviewer", sent.content
    wrong = api.patch(f"{base}/members/{member.pk}/", {**sent.json(), "username": "someone", "role": "viewer"}, format="json")
    assert wrong.status_code == 400 and "`username` is read-only" in wrong.json()["username"][0], wrong.content
    assert api.patch(f"{base}/members/{member.pk}/", {"role": "viewer", "version": 2, "bogus": 1},
                     format="json").json()["bogus"][0].startswith("Unknown field")


@pytest.mark.parametrize("query, key", [
    ("ordering=--id", "ordering"), ("id=%D9%A2", "id"), ("id=%EF%BC%92", "id"), ("id=", "id"), ("id=,", "id"),
    ("status=", "status"),
])
def test_list_parameters_that_are_not_what_the_list_takes_are_refused(client_for, query, key):
    """'--id' was taken as '-id', an Arabic-Indic or fullwidth 2 as 2, '?id=' returned everything."""
    owner = make_user("lister")
    project = make_project(owner)
    make_image(project, seed=2)
    answer = client_for(owner).get(f"/api/projects/{project.pk}/images/?{query}")
    assert answer.status_code == 400 and key in answer.json(), answer.content


def test_display_takes_a_flag_and_nothing_else(client_for):
    owner = make_user("viewer-of-files")
    project = make_project(owner)
    image = make_image(project, seed=5)
    url = f"/api/projects/{project.pk}/images/{image.pk}/file/"
    for query, key in (("display=2", "display"), ("display=1&display=0", "display"), ("display=1&zzz=1", "zzz")):
        answer = client_for(owner).get(f"{url}?{query}")
        assert answer.status_code == 400 and key in answer.json(), (query, answer.content)
    assert client_for(owner).get(f"{url}?display=1").status_code == 200


def test_a_wrong_choice_names_the_choices_and_a_repeated_write_flag_gets_no_list_hint(client_for):
    owner = make_user("chooser")
    project = make_project(owner)
    obj = make_model_annotation(make_image(project, seed=6), make_class(project, "tool"))
    base = f"/api/projects/{project.pk}/annotations/{obj.pk}"
    answer = client_for(owner).post(f"{base}/review/", {"version": obj.version, "target": "both", "decision": "accept"},
                                    format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["decision"] == ['"accept" is not a valid choice: use one of pending, accepted, rejected.']
    twice = client_for(owner).delete(f"{base}/?version={obj.version}&force=1&force=0")
    assert twice.status_code == 400 and twice.json()["force"] == "'force' is sent 2 times; send it once.", twice.content


def test_an_object_saved_as_read_is_no_edit(client_for):
    """Black-box round 16b: the mask sent back exactly as read was a mask edit: a reviewer's
    unchanged save approved a pending mask, an annotator's sent an accepted one back to review, and
    the version and the audit trail moved each time. A member PATCH with its own role moved too."""
    from backend.annotations.models import AnnotationEvent

    from .factories import add_member

    owner, ann = make_user("saver"), make_user("ann")
    project = make_project(owner)
    add_member(project, ann, "annotator")
    obj = make_model_annotation(make_image(project, seed=7), make_class(project, "tool"))
    url = f"/api/projects/{project.pk}/annotations/{obj.pk}/"
    read = client_for(owner).get(url).json()
    saved = client_for(owner).patch(url, read, format="json")
    assert saved.status_code == 200 and saved.json()["version"] == read["version"], saved.content
    assert saved.json()["mask_review"] == "pending"
    same = client_for(owner).patch(url, {"mask_rle": read["mask_rle"], "version": read["version"]}, format="json")
    assert same.json()["version"] == read["version"] and same.json()["mask_review"] == "pending"
    Annotation.objects.filter(pk=obj.pk).update(mask_review="accepted", class_review="accepted")
    read = client_for(ann).get(url).json()
    kept = client_for(ann).patch(url, {"mask_rle": read["mask_rle"], "version": read["version"]}, format="json")
    assert kept.status_code == 200 and kept.json()["mask_review"] == "accepted", kept.content
    assert not AnnotationEvent.objects.filter(annotation_id=obj.pk, action="updated").exists()

    member = add_member(project, make_user("vic"), "reviewer")
    again = client_for(owner).patch(f"/api/projects/{project.pk}/members/{member.pk}/",
                                    {"role": "reviewer", "version": 1}, format="json")
    assert again.status_code == 200 and again.json()["version"] == 1


def test_an_object_sent_back_from_an_older_read_is_a_conflict_and_moved_counts_are_not_compared(client_for):
    from backend.gallery.services import upload_exemplars
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .factories import synthetic_png

    owner = make_user("stale")
    project = make_project(owner)
    tool, saw = make_class(project, "tool"), make_class(project, "saw")
    obj = make_model_annotation(make_image(project, seed=8), tool)
    api = client_for(owner)
    url = f"/api/projects/{project.pk}/annotations/{obj.pk}/"
    read = api.get(url).json()
    assert api.patch(url, {"label_class": saw.pk, "version": read["version"]}, format="json").status_code == 200
    stale = api.patch(url, {**read, "label_class": tool.pk}, format="json")  # class_name moved too
    assert stale.status_code == 409, stale.content

    klass = api.get(f"/api/projects/{project.pk}/classes/{tool.pk}/").json()
    upload_exemplars(project=project, user=owner, class_id=tool.pk, files=[SimpleUploadedFile("t.png", synthetic_png(9))])
    recolored = api.patch(f"/api/projects/{project.pk}/classes/{tool.pk}/", {**klass, "color": "#112233"}, format="json")
    assert recolored.status_code == 200 and recolored.json()["exemplar_count"] == 1, recolored.content

    proj = api.get(f"/api/projects/{project.pk}/").json()
    upload_exemplars(project=project, user=owner, class_id=tool.pk, files=[SimpleUploadedFile("u.png", synthetic_png(10))])
    renamed = api.patch(f"/api/projects/{project.pk}/", {**proj, "description": "edited"}, format="json")
    assert renamed.status_code == 200, renamed.content


def test_add_by_name_finds_a_width_variant(client_for):
    from .factories import make_staff

    root = make_staff()
    project = make_project(root)
    make_user("nina")
    added = client_for(root).post(f"/api/projects/{project.pk}/members/", {"username": "\uff4e\uff49\uff4e\uff41", "role": "viewer"},
                                  format="json")
    assert added.status_code == 201 and added.json()["username"] == "nina", added.content


@pytest.mark.parametrize("path, query, key", [
    ("images/next/", "status=", "status"), ("images/next/", "label_class=", "label_class"), ("images/next/", "after=", "after"),
    ("images/", "id=1,,2", "id"), ("images/", "status=new,", "status"), ("images/", "ordering=", "ordering"),
    ("classes/", "ordering=", "ordering"), ("images/{i}/events/", "annotation=", "annotation"),
])
def test_empty_values_are_refused_on_next_events_and_in_lists(client_for, path, query, key):
    """Black-box round 16b: the rule held for the image list only; next/ took `status=` as no filter,
    events `annotation=` answered every event, `id=1,,2` passed."""
    owner = make_user("empties")
    project = make_project(owner)
    image = make_image(project, seed=11)
    answer = client_for(owner).get(f"/api/projects/{project.pk}/{path.format(i=image.pk)}?{query}")
    assert answer.status_code == 400 and key in answer.json(), answer.content
