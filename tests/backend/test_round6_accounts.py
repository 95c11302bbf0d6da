"""Passwords an instance admin resets (black-box ui6: a user who forgot theirs, or whose one-time
password was lost, was locked out for good), and writes that take no body refuse one."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .factories import add_member, make_image, make_project, make_staff, make_user

pytestmark = pytest.mark.django_db


def _sign_in(username, password):
    client = APIClient()
    return client, client.post("/api/auth/login/", {"username": username, "password": password}, format="json")


def test_an_instance_admin_resets_a_members_password(client_for):
    root = make_staff()
    project = make_project(root)
    nina = make_user("nina", password="ninas-old-secret-1")
    membership = add_member(project, nina, "reviewer")
    token = Token.objects.create(user=nina)
    browser, signed_in = _sign_in("nina", "ninas-old-secret-1")
    assert signed_in.status_code == 200
    r = client_for(root).post(f"/api/projects/{project.pk}/members/{membership.pk}/reset-password/", {}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["username"] == "nina" and len(body["one_time_password"]) >= 12
    assert not Token.objects.filter(pk=token.pk).exists()
    assert browser.get("/api/auth/me/").status_code == 401  # the old session ended with the old password
    assert _sign_in("nina", "ninas-old-secret-1")[1].status_code == 400
    fresh, answer = _sign_in("nina", body["one_time_password"])
    assert answer.json()["must_change_password"] is True
    assert fresh.get(f"/api/projects/{project.pk}/images/").status_code == 403  # until she sets her own


@pytest.mark.parametrize("who", ["project admin, not staff", "staff, not managing the project"])
def test_only_an_instance_admin_who_manages_the_project_resets(client_for, who):
    owner = make_user("owner")
    project = make_project(owner)
    nina = make_user("nina", password="ninas-old-secret-1")
    membership = add_member(project, nina, "reviewer")
    caller = owner
    if who.startswith("staff"):
        caller = make_staff("sam")
        add_member(project, caller, "reviewer")
    r = client_for(caller).post(f"/api/projects/{project.pk}/members/{membership.pk}/reset-password/", {}, format="json")
    assert r.status_code == 403, r.content
    assert get_user_model().objects.get(pk=nina.pk).check_password("ninas-old-secret-1")


def test_a_reset_refuses_oneself_a_superuser_another_projects_member_and_a_body(client_for):
    root = make_staff()
    project = make_project(root)
    own = project.memberships.get(user=root)
    boss = make_staff("boss", superuser=True)
    boss_membership = add_member(project, boss, "viewer")
    other = make_project(make_user("owner2"), name="Other")
    stranger = add_member(other, make_user("stranger"), "viewer")
    nina = add_member(project, make_user("nina"), "viewer")
    api = client_for(root)
    url = f"/api/projects/{project.pk}/members/{{}}/reset-password/"
    mine = api.post(url.format(own.pk), {}, format="json")
    assert mine.status_code == 400 and "Account page" in mine.json()["detail"]
    assert api.post(url.format(boss_membership.pk), {}, format="json").status_code == 403
    assert api.post(url.format(stranger.pk), {}, format="json").status_code == 404
    extra = api.post(url.format(nina.pk), {"password": "chosen-by-admin"}, format="json")
    assert extra.status_code == 400 and "password" in extra.json()["detail"]
    assert get_user_model().objects.get(pk=nina.user_id).check_password("pw-for-tests-123")


def test_a_claim_takes_no_body(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    url = f"/api/projects/{project.pk}/images/{image.pk}/claim/"
    r = client_for(owner).post(url, {"user": 99}, format="json")
    assert r.status_code == 400 and "user" in r.json()["detail"], r.content
    assert client_for(owner).post(url, {}, format="json").status_code == 200
    assert client_for(owner).delete(url, {"force": True}, format="json").status_code == 400


def test_bodyless_job_and_upload_actions_refuse_a_body(client_for, settings):
    """`{"reason": "x", "force": true}` on a job's cancel and `{"x": 1}` on an upload's finish were
    taken without a word (black-box api6 F17)."""
    from backend.jobs import services as job_services

    settings.QUEUE_GPU = "nobody-listens-gpu"
    owner = make_user("owner")
    project = make_project(owner)
    make_image(project)
    job = job_services.start_job(project=project, user=owner)
    api = client_for(owner)
    base = f"/api/projects/{project.pk}/"
    refused = api.post(f"{base}jobs/{job.pk}/cancel/", {"reason": "x", "force": True}, format="json")
    assert refused.status_code == 400 and "force, reason" in refused.json()["detail"], refused.content
    assert api.post(f"{base}jobs/{job.pk}/retry-failed/", {"all": True}, format="json").status_code == 400
    assert api.post(f"{base}jobs/{job.pk}/cancel/", {}, format="json").status_code == 200
    session = api.post(f"{base}images/uploads/", {"file_name": "a.png", "size_bytes": 10}, format="json")
    assert session.status_code == 201, session.content
    finish = api.post(f"{base}images/uploads/{session.json()['id']}/finish/", {"x": 1}, format="json")
    assert finish.status_code == 400 and "x" in finish.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_token_asked_for_during_a_password_reset_does_not_outlive_it(monkeypatch):
    """The token view checked the password, then made the token: a reset that committed in between
    (deleting the user's tokens) left a token made with the old password (black-box api7 F2)."""
    import threading

    from django.contrib.auth import authenticate as real_authenticate

    from backend.core import auth_views
    from backend.core.accounts import reset_password

    root = make_staff("root7")
    nina = make_user("nina7", password="ninas-old-secret-7")

    def authenticate_then_reset(request, **credentials):
        user = real_authenticate(request, **credentials)
        # the admin's reset lands right after the password was checked (its own connection, committed)
        done = threading.Thread(target=lambda: reset_password(by=root, user=get_user_model().objects.get(pk=nina.pk)))
        done.start()
        done.join()
        return user

    monkeypatch.setattr(auth_views, "authenticate", authenticate_then_reset)
    r = APIClient().post("/api/auth/token/", {"username": "nina7", "password": "ninas-old-secret-7"}, format="json")
    assert r.status_code == 400, r.content
    assert not Token.objects.filter(user=nina).exists()


def test_only_a_superuser_resets_another_instance_admin(client_for):
    root = make_staff("root8")
    other_staff = make_staff("staff8")
    project = make_project(root)
    membership = add_member(project, other_staff, "viewer")
    r = client_for(root).post(f"/api/projects/{project.pk}/members/{membership.pk}/reset-password/", {}, format="json")
    assert r.status_code == 403 and "only a superuser" in r.json()["detail"]
    boss = make_staff("boss8", superuser=True)
    add_member(project, boss, "admin")
    assert client_for(boss).post(f"/api/projects/{project.pk}/members/{membership.pk}/reset-password/", {},
                                 format="json").status_code == 200


def test_deletes_and_sign_out_refuse_a_body_and_uploads_an_unknown_form_field(client_for):
    """Member, export, upload, exemplar DELETEs and sign-out took any body; a gallery zip sent with
    `label_clas` made a class of its folder (black-box api7 F3, F4)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.gallery.models import GalleryImage
    from backend.projects.models import LabelClass

    from .factories import image_bytes, make_class

    owner = make_user("owner9")
    project = make_project(owner)
    member = add_member(project, make_user("m9"), "viewer")
    api = client_for(owner)
    base = f"/api/projects/{project.pk}/"
    assert api.delete(f"{base}members/{member.pk}/", {"really": True}, format="json").status_code == 400
    cls = make_class(project, "hammer")
    typo = api.post(f"{base}gallery/", {"label_clas": cls.pk, "files": [SimpleUploadedFile("g.png", image_bytes(9, 9))]},
                    format="multipart")
    assert typo.status_code == 400 and "label_clas" in typo.json()["detail"], typo.content
    assert not GalleryImage.objects.exists() and LabelClass.objects.filter(project=project).count() == 1
    extra = api.post(f"{base}images/", {"files": [SimpleUploadedFile("a.png", image_bytes(9, 9))], "tag": "x"},
                     format="multipart")
    assert extra.status_code == 400 and "tag" in extra.json()["detail"]
    assert api.post("/api/auth/logout/", {"everywhere": True}, format="json").status_code == 400


def test_a_form_flag_sent_empty_is_refused_not_read_as_false(client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    owner = make_user("owner10")
    project = make_project(owner)
    r = client_for(owner).post(f"/api/projects/{project.pk}/imports/", {
        "format": "coco", "as_accepted": "", "file": SimpleUploadedFile("c.json", b"{}")}, format="multipart")
    assert r.status_code == 400 and "as_accepted" in r.json(), r.content
    wrong = client_for(owner).post(f"/api/projects/{project.pk}/imports/", {"format": "coco"}, format="json")
    assert wrong.status_code == 415 and "'file' field" in wrong.json()["detail"]


def test_a_password_changed_over_a_token_ends_that_token_too():
    """A user has one token: someone who got it with the old password kept it when the owner changed
    the password over that same token (black-box round 8)."""
    make_user("tess", password="tess-Old-Pass-1")
    api = APIClient()
    token = api.post("/api/auth/token/", {"username": "tess", "password": "tess-Old-Pass-1"}, format="json").json()["token"]
    owner, thief = APIClient(), APIClient()
    owner.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    thief.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    changed = owner.patch("/api/auth/me/", {"current_password": "tess-Old-Pass-1", "new_password": "tess-New-Pass-2"},
                          format="json")
    assert changed.status_code == 200 and changed.json()["token"] != token
    assert thief.get("/api/auth/me/").status_code in (401, 403)
    owner.credentials(HTTP_AUTHORIZATION=f"Token {changed.json()['token']}")
    assert owner.get("/api/auth/me/").status_code == 200


def test_form_fields_come_once_and_file_fields_are_files(client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .factories import image_bytes

    owner = make_user("owner11")
    project = make_project(owner)
    api = client_for(owner)
    twice = api.post(f"/api/projects/{project.pk}/imports/", {
        "format": "coco", "as_accepted": ["1", "0"], "file": SimpleUploadedFile("c.json", b"{}")}, format="multipart")
    assert twice.status_code == 400 and "as_accepted" in twice.json(), twice.content
    two_files = api.post(f"/api/projects/{project.pk}/imports/", {
        "format": "coco", "file": [SimpleUploadedFile("a.json", b"{}"), SimpleUploadedFile("b.json", b"{}")]},
        format="multipart")
    assert two_files.status_code == 400 and "file" in two_files.json()
    text = api.post(f"/api/projects/{project.pk}/images/", {
        "files": [SimpleUploadedFile("a.png", image_bytes(9, 9)), "not a file"]}, format="multipart")
    assert text.status_code == 400 and "files" in text.json(), text.content
    member = add_member(project, make_user("m11"), "viewer")
    assert api.delete(f"/api/projects/{project.pk}/members/{member.pk}/", data=b"null",
                      content_type="application/json").status_code == 400
