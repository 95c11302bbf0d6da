"""API behind the project pages: per-project job numbers, export class filters, staff-made users."""
from __future__ import annotations

import io
import json
import threading
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import connection
from rest_framework.test import APIClient

from backend.exchange import services as exchange
from backend.jobs.models import PrelabelJob
from backend.jobs.services import start_job

from .exchange.helpers import build_project, populate
from .factories import add_member, make_image, make_project, make_staff, make_user

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- job numbers


def test_job_numbers_count_per_project_and_show_in_the_api(admin_user, client_for):
    a = make_project(admin_user, name="A")
    b = make_project(admin_user, name="B")
    make_image(a, seed=1)
    make_image(b, seed=2)
    numbers_a = [start_job(project=a, user=admin_user, images="all").number for _ in range(3)]
    numbers_b = [start_job(project=b, user=admin_user, images="all").number for _ in range(2)]
    assert numbers_a == [1, 2, 3]
    assert numbers_b == [1, 2]  # not 4, 5: the ids are global, the numbers are the project's
    listed = client_for(admin_user).get(f"/api/projects/{b.pk}/jobs/").json()["results"]
    assert [j["number"] for j in listed] == [2, 1]
    assert all(j["id"] != j["number"] for j in listed)


@pytest.mark.django_db(transaction=True)
def test_concurrent_job_starts_get_distinct_numbers():
    owner = make_user("concurrent-owner")
    project = make_project(owner, name="Busy")
    make_image(project, seed=3)
    errors: list[BaseException] = []

    def start():
        try:
            start_job(project=project, user=owner, images="all")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(PrelabelJob.objects.filter(project=project).values_list("number", flat=True)) == [1, 2, 3, 4]


# --------------------------------------------------------------------------- export filters


def _coco(job):
    with default_storage.open(job.result_file, "rb") as fh:
        zf = zipfile.ZipFile(io.BytesIO(fh.read()))
    return json.loads(zf.read("annotations/instances.json"))


def test_export_class_filter_keeps_only_those_classes(admin_user, client_for):
    project, classes, images = build_project(admin_user)
    anns = populate(project, classes, images)
    hammer, wrench = classes
    response = client_for(admin_user).post(
        f"/api/projects/{project.pk}/exports/", {"format": "coco", "class_ids": [wrench.pk]}, format="json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["options"]["class_ids"] == [wrench.pk]
    job = exchange.run_export(job_id=response.json()["id"])
    doc = _coco(job)
    assert {a["id"] for a in doc["annotations"]} == {anns["ring"].pk, anns["two"].pk}
    assert {a["category_id"] for a in doc["annotations"]} == {wrench.pk}
    assert job.result == {"images": 2, "annotations": 2}


def test_export_rejects_a_class_of_another_project(admin_user, client_for):
    project, _, _ = build_project(admin_user)
    _, other_classes, _ = build_project(admin_user, name="Other")
    response = client_for(admin_user).post(
        f"/api/projects/{project.pk}/exports/", {"format": "coco", "class_ids": [other_classes[0].pk]}, format="json",
    )
    assert response.status_code == 400
    assert f"Class {other_classes[0].pk} does not exist in this project" in response.json()["detail"]


# --------------------------------------------------------------------------- users made by staff


def test_only_staff_can_create_a_user(admin_user, client_for):
    project = make_project(admin_user)
    response = client_for(admin_user).post(
        f"/api/projects/{project.pk}/members/new-user/", {"username": "newbie", "role": "reviewer"}, format="json",
    )
    assert response.status_code == 403
    assert "instance admin" in response.json()["detail"]
    assert not get_user_model().objects.filter(username="newbie").exists()
    reviewer = make_user("rita")
    add_member(project, reviewer, "reviewer")
    staff_reviewer = make_staff("sam")
    add_member(project, staff_reviewer, "reviewer")  # staff, but not allowed to manage this project's members
    response = client_for(staff_reviewer).post(
        f"/api/projects/{project.pk}/members/new-user/", {"username": "newbie", "role": "viewer"}, format="json",
    )
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_staff_creates_a_user_who_must_set_a_password_at_first_login(client_for):
    root = make_staff()
    project = make_project(root)
    response = client_for(root).post(
        f"/api/projects/{project.pk}/members/new-user/", {"username": "nina", "role": "reviewer"}, format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "nina" and body["role"] == "reviewer" and len(body["one_time_password"]) >= 12
    listed = client_for(root).get(f"/api/projects/{project.pk}/members/").json()["results"]
    assert "one_time_password" not in json.dumps(listed)  # shown once, never again

    browser = APIClient(enforce_csrf_checks=False)
    login = browser.post("/api/auth/login/", {"username": "nina", "password": body["one_time_password"]}, format="json")
    assert login.status_code == 200 and login.json()["must_change_password"] is True
    # The one-time password opens nothing but the password change (and signing out).
    blocked = browser.get(f"/api/projects/{project.pk}/images/")
    assert blocked.status_code == 403 and "Set your own password first" in blocked.json()["detail"]
    # Told apart from a role's refusal: the browser keeps a refused write until the password is set.
    assert blocked.json()["code"] == "password_change_required", blocked.json()
    assert browser.get("/api/projects/").status_code == 403
    token = APIClient().post("/api/auth/token/", {"username": "nina", "password": body["one_time_password"]}, format="json")
    assert token.status_code == 403 and token.json()["code"] == "password_change_required"
    bad = browser.patch("/api/auth/me/", {"current_password": "nope", "new_password": "a-long-new-secret"}, format="json")
    assert bad.status_code == 400 and "current password is wrong" in bad.json()["detail"]
    short = browser.patch("/api/auth/me/", {"current_password": body["one_time_password"], "new_password": "abc"}, format="json")
    assert short.status_code == 400 and "too short" in short.json()["detail"]
    ok = browser.patch(
        "/api/auth/me/", {"current_password": body["one_time_password"], "new_password": "a-long-new-secret"}, format="json",
    )
    assert ok.status_code == 200 and ok.json()["must_change_password"] is False
    assert browser.get("/api/auth/me/").status_code == 200  # still signed in after the change
    assert browser.get(f"/api/projects/{project.pk}/images/").status_code == 200  # and let in
    fresh = APIClient()
    assert fresh.post("/api/auth/login/", {"username": "nina", "password": body["one_time_password"]}, format="json").status_code == 400
    assert fresh.post("/api/auth/login/", {"username": "nina", "password": "a-long-new-secret"}, format="json").json()["must_change_password"] is False


def test_new_user_name_clash_and_bad_role_create_nothing(client_for):
    root = make_staff()
    project = make_project(root)
    make_user("Olga")
    clash = client_for(root).post(
        f"/api/projects/{project.pk}/members/new-user/", {"username": "olga", "role": "viewer"}, format="json",
    )
    assert clash.status_code == 400 and "already exists" in clash.json()["detail"]
    bad_role = client_for(root).post(
        f"/api/projects/{project.pk}/members/new-user/", {"username": "zed", "role": "owner"}, format="json",
    )
    assert bad_role.status_code == 400 and "role" in bad_role.json()
    assert not get_user_model().objects.filter(username="zed").exists()


def test_a_new_username_mixing_look_alike_alphabets_is_refused(client_for):
    """'аdmin' with a Cyrillic 'а' was made beside 'admin' and passed for it in every member list
    (black-box round 14, left then); names in one alphabet, any alphabet, are still made."""
    root = make_staff()
    project = make_project(root)
    url = f"/api/projects/{project.pk}/members/new-user/"
    spoof = client_for(root).post(url, {"username": "\u0430dmin", "role": "viewer"}, format="json")
    assert spoof.status_code == 400, spoof.content
    assert "mixes Latin and Cyrillic letters ('\u0430' is Cyrillic)" in spoof.json()["detail"]
    assert not get_user_model().objects.filter(username="\u0430dmin").exists()
    for name in ("\u0438\u0432\u0430\u043d", "jos\u00e9", "\u5c71\u7530\u305f\u308d\u3046", "nina.2"):
        made = client_for(root).post(url, {"username": name, "role": "viewer"}, format="json")
        assert made.status_code == 201, (name, made.content)


def test_new_user_in_a_foreign_project_is_404(client_for):
    root = make_staff()
    stranger = make_user("stranger")
    project = make_project(stranger)
    response = client_for(root).post(
        f"/api/projects/{project.pk}/members/new-user/", {"username": "zed", "role": "viewer"}, format="json",
    )
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_simultaneous_new_users_whose_names_fold_alike_make_one_account(client_for):
    """Six 'fold' / 'FOLD' / 'ｆｏｌｄ' sent at the same moment made four accounts (black-box round
    16): the check came before the insert with nothing between them."""
    from django.db import close_old_connections

    root = make_staff()
    project = make_project(root)
    url = f"/api/projects/{project.pk}/members/new-user/"
    names = ["foldxy", "FOLDXY", "Foldxy", "\uff46\uff4f\uff4c\uff44\uff58\uff59", "foldxY", "fOLDxy"]
    start, answers = threading.Barrier(len(names)), []

    def create(name):
        try:
            client = APIClient()
            client.force_authenticate(root)
            start.wait()
            answers.append(client.post(url, {"username": name, "role": "viewer"}, format="json").status_code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=create, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201] + [400] * 5, answers
    assert get_user_model().objects.filter(username__iexact="foldxy").count() == 1


def test_a_fullwidth_name_is_the_name_it_folds_to(client_for):
    root = make_staff()
    project = make_project(root)
    make_user("WIDE")
    clash = client_for(root).post(f"/api/projects/{project.pk}/members/new-user/",
                                  {"username": "\uff57\uff49\uff44\uff45", "role": "viewer"}, format="json")
    assert clash.status_code == 400 and "already exists" in clash.json()["detail"], clash.content
    assert get_user_model().objects.filter(username__iexact="wide").count() == 1


def test_names_that_fold_alike_only_in_full_case_folding_are_one_name(client_for):
    """'STRASSE' made a second account beside 'straße' (PostgreSQL's iexact folds letter by letter)."""
    root = make_staff()
    project = make_project(root)
    make_user("straße")
    clash = client_for(root).post(f"/api/projects/{project.pk}/members/new-user/",
                                  {"username": "STRASSE", "role": "viewer"}, format="json")
    assert clash.status_code == 400 and "already exists" in clash.json()["detail"], clash.content
    assert not get_user_model().objects.filter(username="STRASSE").exists()
