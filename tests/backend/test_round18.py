"""Round 18: items left alone at earlier stops, and black-box round 18."""
from __future__ import annotations

import pytest

from .factories import make_project, make_user

pytestmark = pytest.mark.django_db

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji: three joined by ZWJ
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # a flag of tag characters
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ is part of the word's spelling


def test_class_names_keep_the_joiners_of_their_writing_and_drop_stray_ones(client_for):
    """Class names dropped every zero-width joiner and tag character: '👨‍👩‍👧' became three
    emoji, the Scotland flag a black flag, a Persian word lost its non-joiner. A joiner that joins
    nothing ('to\\u200dol') still goes, so it cannot make a second 'tool'."""
    owner = make_user("joiners")
    project = make_project(owner)
    api = client_for(owner)
    url = f"/api/projects/{project.pk}/classes/"
    for name in (f"{FAMILY} crew", SCOTLAND, PERSIAN):
        made = api.post(url, {"name": name}, format="json")
        assert made.status_code == 201, made.content
        assert made.json()["name"] == name, (made.json()["name"], name)
    assert api.post(url, {"name": "tool"}, format="json").status_code == 201
    twin = api.post(url, {"name": "to\u200dol\u200d"}, format="json")
    assert twin.status_code == 400, twin.content


def test_the_schema_takes_no_version_from_the_query(client):
    """/api/schema/?version= went unescaped into Content-Disposition and the YAML (an outsider's link
    offered a download named 'setup.bat'); a newline there was an HTML 500. Its errors were YAML."""
    named = client.get('/api/schema/?version=x"; filename="setup.bat"; x="')
    assert named.status_code == 200
    assert named["Content-Disposition"] == 'inline; filename="Razmetka API.yaml"', named["Content-Disposition"]
    assert b"setup.bat" not in named.content
    newline = client.get("/api/schema/?version=%0a")
    assert newline.status_code == 200 and b"version: 1.0.0\n" in newline.content, newline.content[:300]
    refused = client.delete("/api/schema/")
    assert refused.status_code == 405 and refused["Content-Type"].startswith("application/json"), refused.content
    assert refused.json()["code"] == "method_not_allowed"


def test_a_name_word_that_mixes_lookalike_alphabets_is_refused(client_for):
    """'dоg' (a Cyrillic 'о') was taken beside 'dog': two classes that look one in every list, picker
    and export. Usernames refused this already; words in one alphabet each ('USB-кабель') stay fine."""
    owner = make_user("mixer")
    project = make_project(owner)
    api = client_for(owner)
    url = f"/api/projects/{project.pk}/classes/"
    assert api.post(url, {"name": "dog"}, format="json").status_code == 201
    mixed = api.post(url, {"name": "big d\u043eg"}, format="json")
    assert mixed.status_code == 400, mixed.content
    assert "'d\u043eg' in this class name mixes Latin and Cyrillic letters ('\u043e' is Cyrillic)" in str(mixed.json())
    assert api.post(url, {"name": "USB-\u043a\u0430\u0431\u0435\u043b\u044c"}, format="json").status_code == 201
    renamed = api.patch(f"/api/projects/{project.pk}/", {"name": "\u0441\u0430t pics", "version": project.version},
                        format="json")
    assert renamed.status_code == 400 and "project name mixes" in str(renamed.json()), renamed.content


def test_a_bodyless_write_sent_as_multipart_without_a_boundary_is_a_415(client_for, caplog):
    """claim/, cancel/, finish/, logout/ and reset-password/ read such a body with a traceback in the
    log and answered a bare 400 'Bad request.'; every JSON route answers the documented 415."""
    from .factories import make_image

    owner = make_user("boundless")
    project = make_project(owner)
    image = make_image(project)
    with caplog.at_level("ERROR"):
        answer = client_for(owner).generic("POST", f"/api/projects/{project.pk}/images/{image.pk}/claim/", b"abc",
                                           content_type="multipart/form-data")
    assert answer.status_code == 415, answer.content
    assert "multipart/form-data" in answer.json()["detail"], answer.json()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_a_token_sent_beside_a_session_decides_alone(client):
    """With a session cookie, 'Authorization: Token <revoked>' answered 200 as the session's user: a
    script never learnt its token was dead (the README promises 401). Other schemes (a proxy's Basic
    auth) are not the API's and leave the session alone."""
    user = make_user("both")
    client.force_login(user)
    assert client.get("/api/auth/me/").json()["username"] == "both"
    for header in ("Token bogus", "Token a b", "token "):
        refused = client.get("/api/auth/me/", HTTP_AUTHORIZATION=header)
        assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token", (header, refused.content)
    assert client.get("/api/auth/me/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz").status_code == 200


def _config_with(tmp_path, tiny_models_config, **changes):
    from ml.config import PipelineConfig

    cfg = PipelineConfig.from_file(tiny_models_config)  # the models' paths, made absolute
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        setattr(getattr(cfg, section), key, value)
    cfg.to_file(tmp_path / "config.json")
    return str(tmp_path / "config.json")


def test_an_engine_whose_files_are_missing_is_said_so_and_its_runs_refused(settings, tmp_path, tiny_models_config,
                                                                           client_for):
    """A config whose SAM 2 checkpoint is missing: /api/engines/ said gdino-sam2 'configured: true',
    and jobs and evaluations started (201) to fail every image in the worker. A config file that is
    not there: 'configured: false', yet both still started."""
    from backend.jobs.models import PrelabelJob
    from backend.learning.models import EvaluationRun

    from .factories import make_class, make_image

    owner = make_user("engine-check")
    project = make_project(owner)
    make_class(project, "hammer")
    make_image(project)
    api = client_for(owner)
    settings.RAZMETKA_ML_CONFIG = _config_with(tmp_path, tiny_models_config, segmenter__checkpoint="/nonexistent/sam2.pt")
    row = {r["name"]: r for r in api.get("/api/engines/").json()}["gdino-sam2"]
    assert row["configured"] is False and "segmenter.checkpoint '/nonexistent/sam2.pt'" in row["problem"], row
    started = api.post(f"/api/projects/{project.pk}/jobs/", {"images": "all"}, format="json")
    assert started.status_code == 400 and "segmenter.checkpoint" in started.json()["detail"], started.content
    measured = api.post(f"/api/projects/{project.pk}/evaluations/", {}, format="json")
    assert measured.status_code == 400 and "segmenter.checkpoint" in measured.json()["detail"], measured.content
    settings.RAZMETKA_ML_CONFIG = str(tmp_path / "gone" / "config.json")
    assert {r["configured"] for r in api.get("/api/engines/").json()} == {False}
    started = api.post(f"/api/projects/{project.pk}/jobs/", {"images": "all"}, format="json")
    assert started.status_code == 400 and "is not on this server" in started.json()["detail"], started.content
    assert not PrelabelJob.objects.filter(project=project).exists()
    assert not EvaluationRun.objects.filter(project=project).exists()


def test_a_retried_job_records_the_config_it_runs_with(settings, tmp_path, tiny_models_config):
    """A job failed under one config and retried after the server moved to another: its snapshot still
    named the first config, which never produced the results."""
    from backend.jobs import services
    from backend.jobs.models import ItemStatus, JobStatus, PrelabelJob

    from .factories import make_image

    owner = make_user("retrier")
    project = make_project(owner)
    make_image(project)
    settings.QUEUE_GPU = "nobody-listens-retry-test"
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    job = services.start_job(project=project, user=owner, images="all")
    job.items.update(status=ItemStatus.FAILED, error="x")
    PrelabelJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    settings.RAZMETKA_ML_CONFIG = _config_with(tmp_path, tiny_models_config)
    retried = services.retry_failed(project=project, job_id=job.pk, user=owner)
    assert retried.settings_snapshot["ml_config"] == settings.RAZMETKA_ML_CONFIG
    assert PrelabelJob.objects.get(pk=job.pk).settings_snapshot["ml_config"] == settings.RAZMETKA_ML_CONFIG


def test_a_finished_job_says_how_many_objects_it_proposed(settings, tiny_models_config, client_for):
    """'done 8/8' alone did not tell a job that found nothing from one that worked (black-box round 18)."""
    from backend.jobs import services
    from backend.jobs.models import ItemStatus, JobStatus, PrelabelJob

    from .factories import make_image

    owner = make_user("counter")
    project = make_project(owner)
    make_image(project)
    make_image(project, seed=2)
    settings.QUEUE_GPU = "nobody-listens-count-test"
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    job = services.start_job(project=project, user=owner, images="all")
    url = f"/api/projects/{project.pk}/jobs/{job.pk}/"
    assert client_for(owner).get(url).json()["objects"] is None  # still running: not counted
    first, second = job.items.order_by("image_id")
    job.items.filter(pk=first.pk).update(status=ItemStatus.DONE, detections=3)
    job.items.filter(pk=second.pk).update(status=ItemStatus.DONE, detections=0)
    PrelabelJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    assert client_for(owner).get(url).json()["objects"] == 3
    listed = client_for(owner).get(f"/api/projects/{project.pk}/jobs/").json()["results"]
    assert [j["objects"] for j in listed] == [3]  # counted in the list's own query


def test_a_zip_entry_name_loses_its_bidi_controls_as_other_uploads_do(client_for):
    """A zip entry 'inv\\u202egnp.exe' kept its right-to-left override (it showed reversed in the app,
    exports and on disk) while plain and chunked uploads drop it."""
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    from .factories import image_bytes

    owner = make_user("zipper")
    project = make_project(owner)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inv\u202egnp.exe", image_bytes(color=(9, 8, 7)))
        zf.writestr(f"{FAMILY}.png", image_bytes(color=(7, 8, 9)))
    made = client_for(owner).post(f"/api/projects/{project.pk}/images/", {"files": [SimpleUploadedFile(
        "b.zip", buf.getvalue(), content_type="application/zip")]}, format="multipart")
    assert made.status_code == 201, made.content
    assert sorted(i["original_name"] for i in made.json()["created"]) == sorted(
        ["b.zip/invgnp.exe.png", f"b.zip/{FAMILY}.png"]), made.json()


def test_units_and_formulas_mixing_alphabets_stay_names_and_old_names_still_match(client_for, admin_user):
    """The look-alike rule refused 'μm', '10kΩ resistor', 'ΔT sensor' (Greek letters drawn like no
    Latin one); a class named so before could not be saved unchanged, and an import could no
    longer add objects to it (black-box round 18b)."""
    from backend.projects.models import LabelClass

    from .exchange.helpers import json_upload, run_import
    from .factories import make_class, make_image

    project = make_project(admin_user)
    api = client_for(admin_user)
    url = f"/api/projects/{project.pk}/classes/"
    for name in ("5\u00b5m particle", "10k\u03a9 resistor", "\u0394T sensor", "\u03bbmax"):
        made = api.post(url, {"name": name}, format="json")
        assert made.status_code == 201, (name, made.content)
    old = make_class(project, "big d\u043eg")  # named before the rule (a direct insert, as an upgrade)
    kept = api.patch(f"{url}{old.pk}/", {"name": "big d\u043eg", "version": old.version}, format="json")
    assert kept.status_code == 200, kept.content
    renamed = api.patch(f"{url}{old.pk}/", {"name": "small d\u043eg", "version": kept.json()["version"]}, format="json")
    assert renamed.status_code == 400 and "mixes Latin and Cyrillic" in str(renamed.json()), renamed.content
    image = make_image(project)
    coco = {"images": [{"id": 1, "file_name": image.original_name, "width": image.width, "height": image.height}],
            "categories": [{"id": 1, "name": "big d\u043eg"}, {"id": 2, "name": "c\u0430t"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]}]}
    job = run_import(project, admin_user, "coco", json_upload(coco))
    assert job.status == "done", job.errors
    coco["annotations"] = [{"id": 2, "image_id": 1, "category_id": 2, "bbox": [3, 3, 10, 10]}]
    job = run_import(project, admin_user, "coco", json_upload(coco), create_missing_classes=True)
    assert job.status == "failed" and "mixes" in job.errors[0]["error"], job.errors
    assert not LabelClass.objects.filter(project=project, name="c\u0430t").exists()


@pytest.mark.parametrize("route", ["multipart", "zip", "chunked"])
def test_file_names_drop_joiners_and_tags_that_join_nothing(client_for, route):
    """A ZWJ between Latin letters ('in\\u200dv.png') and a lone tag character stayed in image names on
    all three upload routes (and in exports), while class names dropped them; emoji joiners stay."""
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    from .factories import image_bytes

    owner = make_user(f"joiner-{route}")
    project = make_project(owner)
    api = client_for(owner)
    names = ["in\u200dv.png", "a\U000e0067b.png", f"{FAMILY}.png"]
    if route == "chunked":
        from backend.images.upload_sessions import session_file_name

        assert [session_file_name(n) for n in names] == ["inv.png", "ab.png", f"{FAMILY}.png"]
        return
    if route == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for i, name in enumerate(names):
                zf.writestr(name, image_bytes(color=(i * 40, 3, 3)))
        files = [SimpleUploadedFile("z.zip", buf.getvalue(), content_type="application/zip")]
        expected = ["z.zip/inv.png", "z.zip/ab.png", f"z.zip/{FAMILY}.png"]
    else:
        files = [SimpleUploadedFile(n, image_bytes(color=(i * 40, 5, 5)), content_type="image/png")
                 for i, n in enumerate(names)]
        expected = ["inv.png", "ab.png", f"{FAMILY}.png"]
    made = api.post(f"/api/projects/{project.pk}/images/", {"files": files}, format="multipart")
    assert made.status_code == 201, made.content
    assert sorted(i["original_name"] for i in made.json()["created"]) == sorted(expected), made.json()
