"""Passwords an instance admin resets (black-box ui6: a user who forgot theirs, or whose one-time
password was lost, was locked out for good), and writes that take no body refuse one."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .factories import add_member, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def _staff(name="root", superuser=False):
    user = make_user(name)
    user.is_staff, user.is_superuser = True, superuser
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


def _sign_in(username, password):
    client = APIClient()
    return client, client.post("/api/auth/login/", {"username": username, "password": password}, format="json")


def test_an_instance_admin_resets_a_members_password(client_for):
    root = _staff()
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
        caller = _staff("sam")
        add_member(project, caller, "reviewer")
    r = client_for(caller).post(f"/api/projects/{project.pk}/members/{membership.pk}/reset-password/", {}, format="json")
    assert r.status_code == 403, r.content
    assert get_user_model().objects.get(pk=nina.pk).check_password("ninas-old-secret-1")


def test_a_reset_refuses_oneself_a_superuser_another_projects_member_and_a_body(client_for):
    root = _staff()
    project = make_project(root)
    own = project.memberships.get(user=root)
    boss = _staff("boss", superuser=True)
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
