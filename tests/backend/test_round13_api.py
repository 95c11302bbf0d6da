"""Black-box round 13 (API): accept-all without what the screen showed."""
from __future__ import annotations

import pytest

from backend.annotations.models import Annotation

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


def test_accept_all_without_seen_is_refused_and_accepts_nothing(client_for):
    """`seen` was optional: left out, accept-all approved an object an annotator had added after the
    reviewer's screen was drawn, in the reviewer's name."""
    owner, rita = make_user("owner"), make_user("rita")
    project = make_project(owner)
    add_member(project, rita, "reviewer")
    image = make_image(project)
    hammer = make_class(project, "hammer")
    shown = make_model_annotation(image, hammer)
    unseen = make_model_annotation(image, hammer)
    path = f"/api/projects/{project.pk}/images/{image.pk}/accept-all/"
    client = client_for(rita)
    for body in ({}, {"seen": None}):
        refused = client.post(path, body, format="json")
        assert refused.status_code == 400, refused.content
        assert list(refused.json()) == ["seen"], refused.content
    assert set(Annotation.objects.values_list("class_review", flat=True)) == {"pending"}
    stale = client.post(path, {"seen": [[shown.pk, shown.version]]}, format="json")
    assert stale.status_code == 409 and stale.json()["changed"] == [unseen.pk], stale.content
    fine = client.post(path, {"seen": [[shown.pk, shown.version], [unseen.pk, unseen.version]]}, format="json")
    assert fine.status_code == 200 and len(fine.json()) == 2, fine.content


def test_accept_all_with_nothing_seen_marks_an_empty_prelabeled_image_done(client_for):
    from backend.images.models import Image

    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    Image.objects.filter(pk=image.pk).update(status="prelabeled")
    answer = client_for(owner).post(f"/api/projects/{project.pk}/images/{image.pk}/accept-all/", {"seen": []}, format="json")
    assert answer.status_code == 200 and answer.json() == [], answer.content
    image.refresh_from_db()
    assert image.status == "done"


def test_a_project_admin_cannot_demote_or_remove_the_instance_admin(client_for):
    """A project admin demoted and removed the instance admin (who makes the accounts), who then got
    404 on the project and could not add themselves back."""
    from backend.projects.models import Membership

    boss = make_user("boss")
    boss.is_staff = True
    boss.save(update_fields=["is_staff"])
    project = make_project(boss)
    pia = make_user("pia")
    add_member(project, pia, "admin")
    theirs = Membership.objects.get(project=project, user=boss)
    base = f"/api/projects/{project.pk}/members/{theirs.pk}/"
    demote = client_for(pia).patch(base, {"role": "viewer", "version": 1}, format="json")
    assert demote.status_code == 403 and "instance admin" in demote.json()["detail"], demote.content
    remove = client_for(pia).delete(f"{base}?version=1")
    assert remove.status_code == 403 and "instance admin" in remove.json()["detail"], remove.content
    theirs.refresh_from_db()
    assert theirs.role == "admin"
    # The instance admin may step down or leave themselves, and may change the project admin.
    mine = Membership.objects.get(project=project, user=pia)
    assert client_for(boss).patch(f"/api/projects/{project.pk}/members/{mine.pk}/", {"role": "reviewer", "version": 1},
                                  format="json").status_code == 200
    client_for(boss).patch(f"/api/projects/{project.pk}/members/{mine.pk}/", {"role": "admin", "version": 2}, format="json")
    assert client_for(boss).delete(f"{base}?version=1").status_code == 204


def test_a_number_too_large_for_a_float_is_named_not_called_invalid_json(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    hammer = make_class(project, "hammer")
    body = '{"image": %d, "label_class": %d, "polygons": [[1, 1, 1e999, 1, 5, 5]]}' % (image.pk, hammer.pk)
    answer = client_for(owner).post(f"/api/projects/{project.pk}/annotations/", body, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert "1e999 is out of range" in answer.json()["detail"], answer.content
    assert not Annotation.objects.exists()


def test_an_export_refuses_a_segmentation_its_format_cannot_write(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    path = f"/api/projects/{project.pk}/exports/"
    refused = client_for(owner).post(path, {"format": "yolo", "segmentation": "rle"}, format="json")
    assert refused.status_code == 400 and "yolo writes polygon only" in str(refused.json()), refused.content
    refused = client_for(owner).post(path, {"format": "native", "segmentation": "polygon"}, format="json")
    assert refused.status_code == 400, refused.content
    make_image(project, seed=1)  # something to list: an export of nothing is refused at its start
    started = client_for(owner).post(path, {"format": "labelme", "include_empty_images": True}, format="json")
    assert started.status_code == 202 and started.json()["options"]["segmentation"] == "polygon", started.content


def test_an_admins_password_reset_lets_go_of_the_members_claims(client_for):
    """The reset ended the member's sessions, tokens and sockets but kept their claim: the image
    stayed locked to everyone for up to 5 minutes."""
    from backend.images.models import Image

    from .factories import make_staff

    root = make_staff()
    project = make_project(root)
    nina = make_user("nina")
    membership = add_member(project, nina, "reviewer")
    image = make_image(project)
    assert client_for(nina).post(f"/api/projects/{project.pk}/images/{image.pk}/claim/").status_code == 200
    reset = client_for(root).post(f"/api/projects/{project.pk}/members/{membership.pk}/reset-password/", {},
                                  format="json")
    assert reset.status_code == 200, reset.content
    assert Image.objects.get(pk=image.pk).claimed_by_id is None


def test_an_instance_admin_added_as_a_viewer_manages_their_own_membership(client_for):
    """A project admin added the instance admin as a viewer: the instance admin then got 403 on
    changing or dropping their own membership, and nobody else could either."""
    from backend.projects.models import Membership

    from .factories import make_staff

    pia = make_user("pia")
    project = make_project(pia)
    root = make_staff()
    added = client_for(pia).post(f"/api/projects/{project.pk}/members/", {"username": root.username, "role": "viewer"},
                                 format="json")
    assert added.status_code == 201, added.content
    mine = f"/api/projects/{project.pk}/members/{added.json()['id']}/"
    promoted = client_for(root).patch(mine, {"role": "admin", "version": 1}, format="json")
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin", promoted.content
    client_for(root).patch(mine, {"role": "viewer", "version": 2}, format="json")
    assert client_for(root).delete(f"{mine}?version=3").status_code == 204
    assert not Membership.objects.filter(project=project, user=root).exists()
    # A viewer who is not an instance admin still cannot.
    vic = make_user("vic")
    theirs = Membership.objects.create(project=project, user=vic, role="viewer")
    assert client_for(vic).patch(f"/api/projects/{project.pk}/members/{theirs.pk}/", {"role": "admin", "version": 1},
                                 format="json").status_code == 403


def test_sign_in_finds_the_account_whatever_case_or_width_it_is_typed_in():
    """Names are unique whatever their case and adding a member finds 'NINA' as nina, but signing in
    as 'NINA' (or a full-width 'ｎｉｎａ') was "Wrong username or password"."""
    from rest_framework.test import APIClient

    make_user("nina", password="ninas-secret-pass-1")
    for typed in ("nina", "NINA", "ｎｉｎａ", " Nina "):
        answer = APIClient().post("/api/auth/login/", {"username": typed, "password": "ninas-secret-pass-1"}, format="json")
        assert answer.status_code == 200 and answer.json()["username"] == "nina", (typed, answer.content)
    wrong = APIClient().post("/api/auth/login/", {"username": "NINA", "password": "not-her-password"}, format="json")
    assert wrong.status_code == 400
