"""Requests a black-box tester sent that got a 500, an HTML page or a silent default: each now
answers in the API's JSON shape with a status and a message that name what is wrong."""
import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backend.projects.models import LabelClass

from .factories import make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


def _token_client(user) -> APIClient:
    # enforce_csrf_checks: as a real server, where Django's CSRF middleware runs on every view
    # that is not exempt (the test client skips it by default).
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.mark.parametrize("path", ["/api/projects/", "/api/projects/{p}/images/", "/api/projects/{p}/jobs/",
                                  "/api/projects/{p}/members/", "/api/projects/{p}/gallery/",
                                  "/api/projects/{p}/images/{i}/events/"])
def test_a_browsers_accept_header_gets_json_not_a_500(client_for, path):
    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    url = path.format(p=project.pk, i=image.pk)
    browser = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    response = client_for(owner).get(url, **browser)
    assert response.status_code == 200 and response["Content-Type"] == "application/json", response.content[:300]
    asked = client_for(owner).get(url + "?format=api")  # the browsable API is gone, not broken
    assert asked.status_code == 400 and "format" in asked.json(), asked.content[:300]


@pytest.mark.parametrize("method, path", [("post", "/api/nonexistent/"), ("patch", "/api/projects/{p}/members/abc/"),
                                          ("delete", "/api/projects/{p}/images/abc/"),
                                          ("delete", "/api/projects/{p}/gallery/negatives/abc/")])
def test_an_unsafe_method_on_an_unknown_api_url_is_a_json_404(method, path):
    owner = make_user("owner")
    project = make_project(owner)
    response = getattr(_token_client(owner), method)(path.format(p=project.pk), {}, format="json")
    assert response.status_code == 404, response.content[:300]
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_post_to_an_app_page_is_405_not_the_page(client_for):
    response = APIClient(enforce_csrf_checks=True).post("/p/1/review/3", {})
    assert response.status_code == 405


def test_deleting_a_class_objects_use_is_refused_with_a_message(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    hammer = make_class(project, "hammer")
    make_model_annotation(make_image(project), hammer)
    response = client_for(owner).delete(f"/api/projects/{project.pk}/classes/{hammer.pk}/?version={hammer.version}")
    assert response.status_code == 400, response.content[:300]
    assert "used by annotations" in response.json()["detail"] and "deactivate" in response.json()["detail"]
    assert LabelClass.objects.filter(pk=hammer.pk).exists()


@pytest.mark.parametrize("query, key", [("page=abc", "page"), ("page=0", "page"), ("page=-1", "page"),
                                        ("page_size=abc", "page_size"), ("page_size=0", "page_size"),
                                        ("page_size=-5", "page_size"), ("page_size=" + "9" * 30, "page_size"),
                                        ("label_class=abc", "label_class"), ("id=a,b", "id"),
                                        ("id=" + "9" * 25, "id"), ("status=nope", "status")])
def test_a_bad_list_parameter_is_a_400_naming_it(client_for, query, key):
    owner = make_user("owner")
    project = make_project(owner)
    make_image(project)
    response = client_for(owner).get(f"/api/projects/{project.pk}/images/?{query}")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert key in body.get("errors", body) or key in str(body), body
    assert "annotations__" not in str(body) and "'pk'" not in str(body)


def test_a_page_past_the_end_says_which_is_the_last(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    make_image(project)
    response = client_for(owner).get(f"/api/projects/{project.pk}/images/?page=7")
    assert response.status_code == 404 and "the last is 1" in response.json()["detail"]
    assert response.json()["last_page"] == 1  # where a client whose last page emptied goes
    assert client_for(owner).get(f"/api/projects/{project.pk}/images/?page=last").status_code == 200


@pytest.mark.parametrize("path", ["images/{i}/events/?annotation=abc", "images/next/?after=abc",
                                  "images/next/?label_class=x"])
def test_a_bad_review_parameter_is_a_400(client_for, path):
    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    response = client_for(owner).get(f"/api/projects/{project.pk}/" + path.format(i=image.pk))
    assert response.status_code == 400, response.content[:300]


def test_an_account_locks_after_ten_wrong_passwords_whatever_the_address(client_for):
    """15 wrong passwords in a row were each a plain 400 and the right one worked at once after:
    a guesser spreading over addresses never met the per-address throttle."""
    make_user("victim", password="right-pass-123")
    make_user("bystander", password="right-pass-456")
    api = APIClient()
    for i in range(10):
        wrong = api.post("/api/auth/token/", {"username": "victim", "password": f"guess-{i}"}, format="json",
                         REMOTE_ADDR=f"10.0.0.{i}")
        assert wrong.status_code == 400
    locked = api.post("/api/auth/token/", {"username": "Victim", "password": "right-pass-123"}, format="json",
                      REMOTE_ADDR="10.0.1.1")
    assert locked.status_code == 429 and "locked" in locked.json()["detail"]
    assert api.post("/api/auth/login/", {"username": "victim", "password": "right-pass-123"}, format="json").status_code == 429
    # Another account is not affected, and a success clears its own count.
    assert api.post("/api/auth/token/", {"username": "bystander", "password": "right-pass-456"}, format="json").status_code == 200


def test_members_see_the_model_config_relative_to_the_app_not_the_hosts_path(client_for, settings, tmp_path,
                                                                           tiny_models_config):
    import os
    import shutil

    from django.conf import settings as django_settings

    from backend.jobs.services import start_job
    from ml.config import PipelineConfig

    owner = make_user("owner")
    project = make_project(owner)
    make_image(project)
    settings.QUEUE_GPU = "nobody-listens-config-path-test"
    # Real configs at both places (a job the config cannot run is refused at its start).
    inside_dir = django_settings.BASE_DIR / "var" / f"config-path-test-{os.getpid()}"
    outside = tmp_path / "models" / "config.json"
    try:
        for path in (inside_dir / "config.json", outside):
            path.parent.mkdir(parents=True, exist_ok=True)
            PipelineConfig.from_file(tiny_models_config).to_file(path)  # its models' paths made absolute
        for configured, shown in ((str(inside_dir / "config.json"), f"var/{inside_dir.name}/config.json"),
                                  (str(outside), "…/models/config.json")):
            settings.RAZMETKA_ML_CONFIG = configured
            job = start_job(project=project, user=owner, images="all")
            body = client_for(owner).get(f"/api/projects/{project.pk}/jobs/{job.pk}/").json()
            assert body["settings_snapshot"]["ml_config"] == shown
            assert str(tmp_path) not in str(body) and str(django_settings.BASE_DIR) not in str(body)
    finally:
        shutil.rmtree(inside_dir, ignore_errors=True)


@pytest.mark.parametrize("path, body", [("evaluations/", {"split": "bogus"}), ("trainings/", {"kind": "head", "epochs": 3}),
                                        ("jobs/", {"images": "all", "box_treshold": 0.2})])
def test_a_start_with_a_field_it_does_not_know_is_refused_naming_it(client_for, path, body):
    """`{"split": "bogus"}` started an evaluation of everything (the field was dropped): a typo like
    "box_treshold" ran a job with the project's threshold instead of the one asked for."""
    owner = make_user("owner")
    project = make_project(owner)
    make_image(project)
    response = client_for(owner).post(f"/api/projects/{project.pk}/{path}", body, format="json")
    assert response.status_code == 400, response.content[:300]
    unknown = (set(body) - {"images", "kind"}).pop()
    assert unknown in str(response.json()) and "Unknown field" in str(response.json())


@pytest.mark.parametrize("method, path, body", [
    ("post", "", {"name": "Bench", "prompts": ["tool"], "descripton": "typo"}),
    ("patch", "{p}/", {"version": 1, "nmae": "Renamed"}),
    ("post", "{p}/classes/", {"name": "saw", "colour": "#ff0000"}),
    ("patch", "{p}/classes/{c}/", {"version": 1, "activ": False}),
    ("post", "{p}/members/", {"username": "owner", "role": "viewer", "rol": "admin"}),
    ("patch", "{p}/members/{m}/", {"role": "admin", "force": True}),
    ("post", "{p}/annotations/", {"image": "{i}", "label_class": "{c}", "polygons": [[1, 1, 9, 1, 9, 9]], "clas": 1}),
    ("patch", "{p}/annotations/{a}/", {"version": 1, "label_clas": "{c}"}),
    ("post", "{p}/annotations/{a}/review/", {"version": 1, "target": "class", "decision": "accepted", "note": "x"}),
    ("post", "{p}/annotations/{a}/restore/", {"version": 1, "event": 1, "evnt": 2}),
    ("post", "{p}/images/{i}/accept-all/", {"versoin": 1}),
    ("post", "{p}/images/{i}/segment/", {"box": [1, 1, 9, 9], "boxx": [0, 0, 1, 1]}),
    ("post", "{p}/images/uploads/", {"file_name": "a.jpg", "size_bytes": 10, "sha": "0" * 64}),
    ("post", "{p}/exports/", {"format": "coco", "segmentaton": "polygon"}),
    ("post", "{p}/gallery/prune/", {"exemplar_ids": [], "all": True}),
])
def test_any_write_with_a_field_it_does_not_know_is_refused_and_changes_nothing(client_for, method, path, body):
    """`{"version": 1, "label_clas": 7}` answered 200 and changed nothing: the typo was dropped."""
    from backend.annotations.models import Annotation
    from backend.projects.models import Membership, Project

    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    hammer = make_class(project, "hammer")
    other = make_class(project, "saw-blade")
    annotation = make_model_annotation(image, other)
    viewer = make_user("vera")
    member = Membership.objects.create(project=project, user=viewer, role="viewer")
    ids = {"{p}": project.pk, "{c}": hammer.pk, "{i}": image.pk, "{a}": annotation.pk, "{m}": member.pk}
    url = "/api/projects/" + path
    for key, value in ids.items():
        url = url.replace(key, str(value))
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}

    def state():
        return (list(Project.objects.values_list("id", "name", "version")),
                list(LabelClass.objects.order_by("id").values_list("id", "name", "active", "version")),
                list(Membership.objects.order_by("id").values_list("id", "role")),
                list(Annotation.objects.order_by("id").values_list("id", "label_class_id", "class_review", "version")))

    before = state()
    response = getattr(client_for(owner), method)(url, body, format="json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    unknown = next(k for k in body if k in {"descripton", "nmae", "colour", "activ", "rol", "force", "clas", "label_clas",
                                            "note", "evnt", "versoin", "boxx", "sha", "segmentaton", "all"})
    assert response.json()[unknown] == [response.json()[unknown][0]] and "Unknown field" in response.json()[unknown][0]
    assert state() == before


def test_sign_in_and_password_change_name_a_field_they_do_not_know(client_for):
    owner = make_user("owner")
    response = APIClient().post("/api/auth/token/", {"username": "owner", "password": "pw", "otp": "1"}, format="json")
    assert response.status_code == 400 and "otp" in response.json()
    response = client_for(owner).patch("/api/auth/me/", {"current_password": "x", "new_pasword": "y"}, format="json")
    assert response.status_code == 400 and "new_pasword" in response.json()


def test_more_than_a_thousand_files_or_parameters_is_a_json_400(client_for):
    """Django's caps answered an HTML "Bad Request (400)" page (and logged a traceback)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    owner = make_user("owner")
    project = make_project(owner)
    files = [SimpleUploadedFile(f"h{i}.png", b"x") for i in range(1001)]
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/", {"files": files}, format="multipart")
    assert response.status_code == 400 and response["Content-Type"] == "application/json", response.content[:200]
    assert "More than 1000 files" in response.json()["detail"]
    query = "&".join(f"x{i}=1" for i in range(1001))
    response = client_for(owner).get(f"/api/projects/{project.pk}/images/?{query}")
    assert response.status_code == 400 and response["Content-Type"] == "application/json", response.content[:200]
    assert "parameters" in response.json()["detail"]


def test_wrong_current_passwords_lock_the_password_change_like_sign_in(client_for):
    """40 wrong current passwords through PATCH /api/auth/me/ were each a plain 400: a stolen token
    could guess the real password without limit."""
    user = make_user("marta", password="right-pass-789")
    client = client_for(user)
    for i in range(10):
        wrong = client.patch("/api/auth/me/", {"current_password": f"guess-{i}", "new_password": "n3w-Pass-xyz!"},
                             format="json")
        assert wrong.status_code == 400 and "current password is wrong" in wrong.json()["detail"]
    locked = client.patch("/api/auth/me/", {"current_password": "right-pass-789", "new_password": "n3w-Pass-xyz!"},
                          format="json")
    assert locked.status_code == 429 and "locked" in locked.json()["detail"]
    user.refresh_from_db()
    assert user.check_password("right-pass-789")
    assert APIClient().post("/api/auth/token/", {"username": "marta", "password": "right-pass-789"},
                            format="json").status_code == 429



@pytest.mark.parametrize("path", ["jobs/{j}/items/", "exports/", "imports/", "members/", "evaluations/", "trainings/",
                                  "models/", "gallery/versions/", "annotations/{a}/events/", "images/{i}/events/"])
def test_every_list_refuses_a_parameter_it_does_not_know(client_for, path):
    """`?stauts=failed` (or any unknown parameter) returned the whole list on these; `?format=coco`
    answered 404 (DRF's renderer switch)."""
    from backend.jobs.services import start_job

    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    annotation = make_model_annotation(image, make_class(project, "hammer"))
    job = start_job(project=project, user=owner, images="all")
    url = f"/api/projects/{project.pk}/" + path.format(j=job.pk, a=annotation.pk, i=image.pk)
    for param in ("stauts", "format"):
        response = client_for(owner).get(url + f"?{param}=failed")
        assert response.status_code == 400 and param in response.json(), (url, response.content[:300])
    assert client_for(owner).get(url + "?page_size=5").status_code == 200


def test_job_items_filter_by_status_and_unknown_annotation_events_are_404(client_for):
    from backend.jobs.models import ItemStatus
    from backend.jobs.services import start_job

    owner = make_user("owner")
    project = make_project(owner)
    images = [make_image(project, seed=s) for s in (1, 2, 3)]
    job = start_job(project=project, user=owner, images="all")
    job.items.filter(image=images[0]).update(status=ItemStatus.FAILED, error="boom")
    base = f"/api/projects/{project.pk}/jobs/{job.pk}/items/"
    failed = client_for(owner).get(base + "?status=failed").json()
    assert [r["image"] for r in failed["results"]] == [images[0].pk]
    assert client_for(owner).get(base + "?status=bogus").status_code == 400
    missing = client_for(owner).get(f"/api/projects/{project.pk}/annotations/999999/events/")
    assert missing.status_code == 404 and missing.json()["detail"] == "Annotation not found."


def test_a_token_dies_with_its_sign_out_and_with_a_new_password(client_for):
    """A leaked token stayed valid for ever: through a password change and its own sign-out."""
    user = make_user("tomas", password="old-Pass-9876!")
    api = APIClient()
    token = api.post("/api/auth/token/", {"username": "tomas", "password": "old-Pass-9876!"}, format="json").json()["token"]
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert script.get("/api/auth/me/").status_code == 200
    assert script.post("/api/auth/logout/").status_code == 204
    gone = script.get("/api/auth/me/")
    # 401 with the scheme to use, as RFC 9110 asks (DRF said 403: the session had no challenge).
    assert gone.status_code == 401 and "Invalid token" in gone.json()["detail"]
    assert gone["WWW-Authenticate"] == "Token"
    assert APIClient().get("/api/projects/").status_code == 403  # no credentials at all (the browser): as before
    bearer = APIClient().get("/api/projects/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bearer.status_code == 401 and "Authorization: Token <key>" in bearer.json()["detail"]  # not "not provided"
    token = api.post("/api/auth/token/", {"username": "tomas", "password": "old-Pass-9876!"}, format="json").json()["token"]
    script.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    browser = APIClient()
    browser.force_login(user)
    changed = browser.patch("/api/auth/me/", {"current_password": "old-Pass-9876!", "new_password": "new-Pass-4321!"},
                            format="json")
    assert changed.status_code == 200
    assert "Invalid token" in script.get("/api/auth/me/").json()["detail"]


def test_sign_in_from_another_sites_page_is_refused_and_the_django_admin_is_not_mounted():
    """A cross-site form could sign a visitor into the attacker's account (login CSRF); /admin/'s
    sign-in form had no throttle or lockout."""
    make_user("ulla", password="ulla-Pass-9876!")
    body = {"username": "ulla", "password": "ulla-Pass-9876!"}
    foreign = APIClient().post("/api/auth/login/", body, format="multipart", HTTP_ORIGIN="https://evil.example")
    assert foreign.status_code == 403 and "sessionid" not in foreign.cookies
    same = APIClient().post("/api/auth/login/", body, format="json", HTTP_ORIGIN="http://testserver")
    assert same.status_code == 200
    assert APIClient().post("/api/auth/login/", body, format="json").status_code == 200  # a script: no Origin
    admin_page = APIClient().get("/admin/login/")
    assert b"csrfmiddlewaretoken" not in admin_page.content and b"Django" not in admin_page.content


@pytest.mark.parametrize("body", ['{"name": "x", "prompts": ["a\\u0000b"]}', '{"name": "x", "prompts": ["a\\ud800b"]}',
                                  '{"name": "x\\udfff"}', '{"name": "x", "a\\ud800b": 1}'])
def test_a_nul_or_lone_surrogate_in_a_json_body_is_a_400_not_a_500(client_for, body):
    """PostgreSQL refused them (500 from the project's prompts); a 400 echoing one failed to render."""
    owner = make_user("owner")
    client = client_for(owner)
    response = client.generic("POST", "/api/projects/", body.encode(), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "NUL character or an unpaired surrogate" in response.json()["detail"]
    fine = client.generic("POST", "/api/projects/", '{"name": "\\u00e9t\\u00e9 \\ud83d\\ude00", "prompts": ["tool"]}'.encode(),
                          content_type="application/json")
    assert fine.status_code == 201 and fine.json()["name"] == "été 😀"


@pytest.mark.parametrize("weak", ["12345678", "password", "qwertyuiop"])
def test_a_common_or_numeric_password_is_refused(client_for, weak):
    user = make_user("wanda", password="wanda-Pass-9876!")
    response = client_for(user).patch("/api/auth/me/", {"current_password": "wanda-Pass-9876!", "new_password": weak},
                                      format="json")
    assert response.status_code == 400 and ("common" in response.json()["detail"] or "numeric" in response.json()["detail"])
    user.refresh_from_db()
    assert user.check_password("wanda-Pass-9876!")


def test_lookalike_class_names_are_one_name(client_for):
    """'bird\\u200b' and full-width 'ｂｉｒｄ' were accepted beside 'bird': three classes that look the same."""
    owner = make_user("owner")
    project = make_project(owner)
    base = f"/api/projects/{project.pk}/classes/"
    assert client_for(owner).post(base, {"name": "bird"}, format="json").status_code == 201
    for lookalike in ("bird\u200b", "ｂｉｒｄ", " Bird  "):
        response = client_for(owner).post(base, {"name": lookalike}, format="json")
        assert response.status_code == 400 and "already exists" in response.json()["detail"], response.content
    made = client_for(owner).post(base, {"name": "big   \u200bsaw"}, format="json")
    assert made.status_code == 201 and made.json()["name"] == "big saw"
    blank = client_for(owner).post(base, {"name": "\u200b"}, format="json")
    assert blank.status_code == 400 and "name" in blank.json()


def test_signing_out_releases_the_images_one_held(client_for):
    """The page released its claim after signing out, was refused, and the image stayed locked."""
    from datetime import timedelta

    from django.utils import timezone

    from backend.images.models import Image

    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    Image.objects.filter(pk=image.pk).update(claimed_by=owner, claim_expires_at=timezone.now() + timedelta(minutes=5))
    assert client_for(owner).post("/api/auth/logout/").status_code == 204
    assert Image.objects.get(pk=image.pk).claimed_by_id is None


def test_an_empty_file_is_named_as_such_when_its_upload_opens(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/uploads/", {"file_name": "empty.png", "size_bytes": 0},
                                      format="json")
    assert response.status_code == 400 and response.json()["size_bytes"] == ["The file is empty (0 bytes)."]


@pytest.mark.django_db
@pytest.mark.parametrize("what, query, body, key", [
    ("annotation", "?version=1&forse=1", None, "forse"),
    ("annotation", "?version=1x", None, "version"),
    ("annotation", "", {"version": 1, "reason": "dup"}, "reason"),
    ("annotation", "", [1], "detail"),
    ("annotation", "", {"version": True}, "version"),
    ("image", "?version=1&forse=1", None, "forse"),
    ("class", "?versoin=1", None, "versoin"),
    ("project", "?version=1.0", None, "version"),
])
def test_a_delete_refuses_what_it_does_not_know_and_deletes_nothing(client_for, what, query, body, key):
    """`?version=1&forse=1` deleted (the typo ignored), `?version=1x` said "'version' is required",
    and a body `[1]` was a 500."""
    from backend.annotations.models import Annotation
    from backend.images.models import Image
    from backend.projects.models import Project

    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    spare = make_class(project, "spare")
    annotation = make_model_annotation(image, make_class(project, "hammer"))
    path = {"annotation": f"annotations/{annotation.pk}/", "image": f"images/{image.pk}/",
            "class": f"classes/{spare.pk}/", "project": ""}[what]
    response = client_for(owner).delete(f"/api/projects/{project.pk}/{path}{query}", body,
                                        format="json" if body is not None else None)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert key in response.json(), response.json()
    assert (Project.objects.count(), Image.objects.count(), Annotation.objects.count(),
            LabelClass.objects.filter(pk=spare.pk).count()) == (1, 1, 1, 1)
    good = client_for(owner).delete(f"/api/projects/{project.pk}/annotations/{annotation.pk}/?version=1&force=1")
    assert good.status_code == 204, good.content


@pytest.mark.django_db
@pytest.mark.parametrize("path, key", [
    ("images/?status=new&status=in_review", "status"),
    ("images/?id=1&id=2", "id"),
    ("images/next/?status=new&status=in_review", "status"),
    ("jobs/?page=1&page=2", "page"),
    ("images/?page_size=501", "page_size"),
    ("classes/?active=true&active=false", "active"),
])
def test_a_parameter_sent_twice_or_a_page_size_past_the_cap_is_a_400(client_for, path, key):
    """`?status=new&status=in_review` answered for in_review alone; page_size=501 was cut to 500."""
    owner = make_user("owner")
    project = make_project(owner)
    response = client_for(owner).get(f"/api/projects/{project.pk}/{path}")
    assert response.status_code == 400 and key in response.json(), (response.status_code, response.content[:300])


@pytest.mark.django_db
def test_a_chunk_with_a_finish_flag_it_cannot_read_is_refused(client_for):
    """`finish=yes` answered 200 and left the upload open."""
    owner = make_user("owner")
    project = make_project(owner)
    client = client_for(owner)
    base = f"/api/projects/{project.pk}/images/uploads/"
    sid = client.post(base, {"file_name": "a.png", "size_bytes": 4}, format="json").json()["id"]
    for query, key in (("offset=0&finish=yes", "finish"), ("offset=0&fnish=1", "fnish")):
        response = client.generic("PUT", f"{base}{sid}/?{query}", b"abcd", content_type="application/octet-stream")
        assert response.status_code == 400 and key in response.json(), response.content
    assert client.get(f"{base}{sid}/").json()["received_bytes"] == 0


@pytest.mark.django_db
def test_small_answers_name_what_is_there(client_for):
    """A duplicate class named the new spelling ('CAT') not the existing 'cat'; a project could be
    named with a zero-width space alone; an unknown field's 400 listed read-only fields as known."""
    owner = make_user("owner")
    project = make_project(owner)
    make_class(project, "cat")
    client = client_for(owner)
    base = f"/api/projects/{project.pk}/"
    duplicate = client.post(f"{base}classes/", {"name": "CAT"}, format="json")
    assert duplicate.status_code == 400 and duplicate.json()["detail"] == "A class named 'cat' already exists in this project."
    invisible = client.patch(base, {"version": 1, "name": "\u200b"}, format="json")
    assert invisible.status_code == 400 and invisible.json()["name"] == ["A project needs a name."], invisible.content
    created = client.post("/api/projects/", {"name": "\u200b \u200b", "prompts": ["tool"]}, format="json")
    assert created.status_code == 400 and "name" in created.json()
    typo = client.patch(base, {"version": 1, "nmae": "x"}, format="json").json()["nmae"][0]
    assert "created_at" not in typo and "my_role" not in typo and "name" in typo, typo


def test_a_request_for_another_host_logs_one_line_not_a_traceback():
    """Each request with a bad Host header wrote Django's ~30-line DisallowedHost traceback to the
    log: anyone, without an account, could fill it (round 12)."""
    import io
    import logging

    from backend.core.log_filters import WithoutTraceback

    handlers = [h for h in logging.getLogger("django.security.DisallowedHost").handlers
                if any(isinstance(f, WithoutTraceback) for f in h.filters)]
    assert handlers, "the DisallowedHost logger has its own brief handler (settings.LOGGING)"
    out = io.StringIO()
    olds = [h.setStream(out) for h in handlers]
    try:
        answer = APIClient().get("/api/health/", HTTP_HOST="evil.example")
    finally:
        for h, old in zip(handlers, olds):
            h.setStream(old)
    assert answer.status_code == 400
    assert "Invalid HTTP_HOST header: 'evil.example'" in out.getvalue()
    assert "Traceback" not in out.getvalue() and out.getvalue().count("\n") == 1, out.getvalue()


def test_a_body_of_many_unknown_keys_is_answered_briefly(client_for):
    """Black-box round 15: 200,000 unknown keys were each named with the list of known fields (a
    39 MB answer after seconds of a web process); a few are named, the rest counted."""
    user = make_user("keys")
    body = {f"k{i}": 1 for i in range(20_000)} | {"name": "x"}
    response = client_for(user).post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert len(response.content) < 5_000, len(response.content)
    errors = response.json()
    assert len([k for k in errors if k.startswith("k")]) == 10
    assert "20000 unknown fields in all" in errors["non_field_errors"][0]


def test_a_list_past_its_cap_is_refused_before_its_items_are_read(client_for):
    """300,000 [id, version] pairs were each validated before the length check (5 s per request)."""
    owner = make_user("bulk")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/delete/",
                                      {"images": [["x", "y"]] * 5_000}, format="json")
    assert response.status_code == 400
    assert response.json()["images"] == ["Ensure this field has no more than 1000 elements (it has 5000)."]


@pytest.mark.parametrize("name, said", [
    ("\x7f", "control characters (U+007F)"), ("\x1b[2J\x1b[31mred", "control characters (U+001B)"),
    ("\x9b", "control characters (U+009B)"), ("\u0301", "needs a name"), ("\u3164", "needs a name"),
    ("\u115f", "needs a name"), ("\u17b4", "needs a name"), ("\u034f", "needs a name"), ("\u2800", "needs a name"),
])
def test_class_and_project_names_that_show_nothing_or_steer_a_terminal_are_refused(client_for, name, said):
    """Black-box round 15: DEL, ESC colour codes, a lone combining mark, the combining grapheme
    joiner, Hangul fillers and the braille blank made classes and projects that print as nothing."""
    owner = make_user("names")
    project = make_project(owner)
    as_class = client_for(owner).post(f"/api/projects/{project.pk}/classes/", {"name": name}, format="json")
    assert as_class.status_code == 400 and said in json.dumps(as_class.json()), as_class.content
    as_project = client_for(owner).post("/api/projects/", {"name": name}, format="json")
    assert as_project.status_code == 400 and said.replace("needs a name", "project needs a name") in json.dumps(
        as_project.json()) or said in json.dumps(as_project.json()), as_project.content


def test_invisible_characters_in_a_name_make_no_second_class(client_for):
    owner = make_user("twins")
    project = make_project(owner)
    url = f"/api/projects/{project.pk}/classes/"
    assert client_for(owner).post(url, {"name": "tool"}, format="json").status_code == 201
    for twin in ("tool\u034f", "tool\u3164", "\ufefftool"):
        again = client_for(owner).post(url, {"name": twin}, format="json")
        assert again.status_code == 400, (twin, again.content)
    made = client_for(owner).post("/api/projects/", {"name": "\ufeffShop floor"}, format="json")
    assert made.status_code == 201 and made.json()["name"] == "Shop floor"


def test_variation_selectors_and_noncharacters_make_no_second_class(client_for):
    """Black-box round 16: 'tool' with U+FE0F, U+FE00, U+E0100, a Mongolian selector, U+FFFF or
    U+FDD0 were eight classes printing 'tool'; a gallery folder '🐱\ufe0f' beside '🐱' two."""
    owner = make_user("selectors")
    project = make_project(owner)
    url = f"/api/projects/{project.pk}/classes/"
    assert client_for(owner).post(url, {"name": "tool"}, format="json").status_code == 201
    for twin in ("tool\ufe0f", "tool\ufe00", "tool\U000e0100", "tool\u180b", "to\u180col", "tool\uffff", "tool\ufdd0"):
        again = client_for(owner).post(url, {"name": twin}, format="json")
        assert again.status_code == 400 and "already" in json.dumps(again.json()), (twin, again.content)
    cat = client_for(owner).post(url, {"name": "\U0001f431\ufe0f"}, format="json")
    assert cat.status_code == 201 and cat.json()["name"] == "\U0001f431"
    # Code points newer than this Python's Unicode tables (🩷, U+1FA77, Unicode 15) are names people use.
    newer = client_for(owner).post(url, {"name": "\U0001fa77 pink"}, format="json")
    assert newer.status_code == 201 and newer.json()["name"] == "\U0001fa77 pink", newer.content
    renamed = client_for(owner).patch(f"/api/projects/{project.pk}/", {"name": "proj\ufe0f", "version": project.version},
                                      format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "proj", renamed.content
