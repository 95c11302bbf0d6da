"""Round 6, learning: trainings and evaluations can be cancelled and only one of each runs per
project (F3), concurrent activations never answer 500 (F5), no server path in the answers (F11),
and a run whose project is deleted stops quietly (F15)."""
import logging
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection

from backend.annotations.models import ReviewState
from backend.learning import services, tasks
from backend.learning.models import EvaluationRun, ModelVersion, TrainingRun
from backend.projects.models import Project, Role

from .factories import add_member, make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_broker(monkeypatch):
    """Runs stay queued: nothing is sent to the gpu queue (a later test's worker would take them)."""
    monkeypatch.setattr(services.outbox, "send_on_commit", lambda record: None)


def approved_project(owner):
    project = make_project(owner)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    # Two hammers: a head needs a class with an object to hold out (round 11).
    for seed, label in ((1, hammer), (2, wrench), (3, hammer)):
        annotation = make_model_annotation(make_image(project, seed=seed), label)
        type(annotation).objects.filter(pk=annotation.pk).update(class_review=ReviewState.ACCEPTED,
                                                                 mask_review=ReviewState.ACCEPTED)
    return project


# -- F3: cancel, and one live run per project and kind ------------------------------------------

def test_cancel_a_queued_run_and_who_may(client_for, settings, tiny_models_config, no_broker):
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner, viewer, stranger = make_user("c-owner"), make_user("c-viewer"), make_user("c-stranger")
    project = approved_project(owner)
    add_member(project, viewer, Role.VIEWER)
    other = make_project(stranger, name="Other")
    base = f"/api/projects/{project.pk}"
    for what, body in (("trainings", {"kind": "head"}), ("evaluations", {})):
        created = client_for(owner).post(f"{base}/{what}/", body, format="json")
        assert created.status_code == 201, created.content
        url = f"{base}/{what}/{created.json()['id']}/cancel/"
        assert client_for(viewer).post(url, {}, format="json").status_code == 403
        assert client_for(stranger).post(url, {}, format="json").status_code == 404
        assert client_for(stranger).post(f"/api/projects/{other.pk}/{what}/{created.json()['id']}/cancel/", {},
                                         format="json").status_code == 404
        refused = client_for(owner).post(url, {"force": True}, format="json")  # strict: no fields at all
        assert refused.status_code == 400 and "force" in str(refused.content)
        response = client_for(owner).post(url, {}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["state"] == "cancelled" and "c-owner" in response.json()["error"]
        again = client_for(owner).post(url, {}, format="json")
        assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    # The queued message, when a worker takes it, runs nothing.
    run = TrainingRun.objects.get(project=project)
    ran = []
    tasks._guarded(run, ran.append)
    assert ran == [] and TrainingRun.objects.get(pk=run.pk).state == "cancelled"


def test_one_live_run_per_project_and_kind(client_for, settings, tiny_models_config, no_broker):
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner = make_user("l-owner")
    project = approved_project(owner)
    base = f"/api/projects/{project.pk}"
    head = client_for(owner).post(f"{base}/trainings/", {"kind": "head"}, format="json")
    assert head.status_code == 201
    second = client_for(owner).post(f"{base}/trainings/", {"kind": "head"}, format="json")
    assert second.status_code == 409, second.content
    assert f"head training #{head.json()['id']}" in second.json()["detail"].lower() and "cancel" in second.json()["detail"]
    assert second.json()["running"] == {"id": head.json()["id"], "state": "queued"}
    # Another kind, and another project, are not held up.
    assert client_for(owner).post(f"{base}/trainings/", {"kind": "maskrcnn"}, format="json").status_code == 201
    other = approved_project(owner)
    assert client_for(owner).post(f"/api/projects/{other.pk}/trainings/", {"kind": "head"}, format="json").status_code == 201
    first = client_for(owner).post(f"{base}/evaluations/", {}, format="json")
    assert first.status_code == 201
    refused = client_for(owner).post(f"{base}/evaluations/", {"engine": "maskrcnn"}, format="json")
    assert refused.status_code == 409 and f"evaluation #{first.json()['id']}" in refused.json()["detail"].lower()
    TrainingRun.objects.filter(pk=head.json()["id"]).update(state="running")
    assert client_for(owner).post(f"{base}/trainings/", {"kind": "head"}, format="json").status_code == 409
    # Once it is over (cancelled here) the next one starts.
    assert client_for(owner).post(f"{base}/trainings/{head.json()['id']}/cancel/", {}, format="json").status_code == 200
    assert client_for(owner).post(f"{base}/trainings/", {"kind": "head"}, format="json").status_code == 201
    assert TrainingRun.objects.filter(project=project).count() == 3
    assert EvaluationRun.objects.filter(project=project).count() == 1


def test_a_training_cancelled_after_its_last_step_registers_nothing():
    owner = make_user("r-owner")
    project = make_project(owner)
    run = TrainingRun.objects.create(project=project, kind="head", state="running", created_by=owner)
    services.cancel_run(project=project, model=TrainingRun, run_id=run.pk, user=owner)
    with pytest.raises(services.RunStopped):
        services.register_version(run=run, file_name="head.npz", content=b"x", metrics={})
    with pytest.raises(services.RunStopped):
        services.record_progress(run, progress=0.5)
    assert not ModelVersion.objects.exists()
    run.refresh_from_db()
    assert run.state == "cancelled" and run.model_version_id is None and run.progress == 0.0


@pytest.mark.worker
def test_cancel_a_running_training_frees_the_gpu_worker(celery_worker, client_for, settings, tiny_models_config):
    """A Mask R-CNN training of thousands of steps stops within seconds of the cancel, keeps
    nothing, and the gpu worker takes the next task; a project deleted under a running training
    ends it with one info line in the worker log, no traceback (F15)."""
    from backend.core.tasks import ping

    from .test_learning_jobs import reviewed_project

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner, project, _ = reviewed_project(n_reviewed=3, n_pending=0)
    base = f"/api/projects/{project.pk}"
    params = {"arch": "tiny", "steps": 600, "min_size": 64, "max_size": 96, "batch_size": 1, "rois_per_image": 16}

    def start_and_wait_running():
        response = client_for(owner).post(f"{base}/trainings/", {"kind": "maskrcnn", "params": params}, format="json")
        assert response.status_code == 201, response.content
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = TrainingRun.objects.get(pk=response.json()["id"])
            if run.state == "running" and run.progress > 0:
                return run
            assert run.state in ("queued", "running"), run.error
            time.sleep(0.2)
        raise AssertionError("the training never got going")

    run = start_and_wait_running()
    response = client_for(owner).post(f"{base}/trainings/{run.pk}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "cancelled"
    t0 = time.monotonic()
    ping.apply_async(args=["after-cancel"], queue=django_settings.QUEUE_GPU).get(timeout=60)  # the worker is free
    assert time.monotonic() - t0 < 60
    run.refresh_from_db()
    assert run.state == "cancelled" and run.model_version_id is None and run.progress < 0.9
    assert not ModelVersion.objects.filter(project=project).exists()

    log = django_settings.VAR_DIR / "worker-test.log"
    offset = log.stat().st_size
    run = start_and_wait_running()  # the cancelled one no longer blocks a new start
    from backend.projects.services import delete_project

    from django.db import transaction

    with transaction.atomic():
        delete_project(project_id=project.pk, version=Project.objects.get(pk=project.pk).version, by=owner)
    ping.apply_async(args=["after-delete"], queue=django_settings.QUEUE_GPU).get(timeout=60)
    tail = log.read_bytes()[offset:].decode(errors="replace")
    assert f"TrainingRun {run.pk} was deleted while it ran" in tail, tail[-3000:]
    assert "DoesNotExist" not in tail and "raised unexpected" not in tail, tail[-3000:]


@pytest.mark.worker
def test_cancel_a_running_evaluation_stops_between_images(celery_worker, settings, monkeypatch, tiny_models_config):
    from backend.learning import evaluating

    from .test_learning_jobs import reviewed_project

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner, project, _ = reviewed_project(n_reviewed=3, n_pending=0)
    settings.PRELABEL_CHUNK_SIZE = 1
    run = EvaluationRun.objects.create(project=project, created_by=owner, engine="gdino-sam2")
    real_read, calls = evaluating.read_rgb, []

    def read_and_cancel(name):
        calls.append(name)
        if len(calls) == 1:  # an admin cancels while the first image is scored
            services.cancel_run(project=project, model=EvaluationRun, run_id=run.pk, user=owner)
        return real_read(name)

    monkeypatch.setattr(evaluating, "read_rgb", read_and_cancel)
    tasks._guarded(run, evaluating.run)
    run.refresh_from_db()
    assert run.state == "cancelled" and run.metrics == {}
    assert len(calls) == 1 and run.processed == 0  # no image after the cancel


# -- F5: concurrent activations ------------------------------------------------------------------

def test_concurrent_activations_of_one_kind_never_answer_500(client_for, monkeypatch):
    owner = make_user("a-owner")
    project = make_project(owner)
    versions = [ModelVersion.objects.create(project=project, kind="head", number=n, file=f"models/h{n}.npz")
                for n in (1, 2, 3)]
    real_check = services.check_version
    barrier = threading.Barrier(len(versions))

    def check_together(model, version):  # all three past their own checks at once (the race)
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass  # serialized (the fix): the others wait on the lock, not here
        return real_check(model, version)

    monkeypatch.setattr(services, "check_version", check_together)
    answers: dict[int, tuple[int, dict]] = {}

    def activate(v):
        try:
            client = client_for(owner)
            client.raise_request_exception = False
            r = client.post(f"/api/projects/{project.pk}/models/{v.pk}/activate/", {"version": v.version}, format="json")
            answers[v.pk] = (r.status_code, r.json() if r.status_code != 500 else {})
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(code for code, _ in answers.values()) == [200, 200, 200], answers
    active = list(ModelVersion.objects.filter(project=project, state="active"))
    assert len(active) == 1
    # One after the other, each answer true when given: the last one activated is the active one.
    last = max(answers, key=lambda pk: answers[pk][1]["promoted_at"])
    assert active[0].pk == last and all(body["state"] == "active" for _, body in answers.values())
    assert set(ModelVersion.objects.exclude(pk=last).values_list("state", flat=True)) == {"retired"}


def test_concurrent_activations_of_one_version_give_one_200_and_409s(client_for, monkeypatch):
    owner = make_user("s-owner")
    project = make_project(owner)
    version = ModelVersion.objects.create(project=project, kind="maskrcnn", number=1, file="models/m1.zip")
    real_check, barrier = services.check_version, threading.Barrier(2)

    def check_together(model, v):
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return real_check(model, v)

    monkeypatch.setattr(services, "check_version", check_together)
    codes = []

    def activate():
        try:
            client = client_for(owner)
            client.raise_request_exception = False
            codes.append(client.post(f"/api/projects/{project.pk}/models/{version.pk}/activate/",
                                     {"version": version.version}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=activate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [200, 409], codes
    assert ModelVersion.objects.get(pk=version.pk).state == "active"


# -- F11: no server path in the answers ----------------------------------------------------------

def test_learning_answers_show_no_absolute_server_path(client_for):
    owner, viewer = make_user("p-owner"), make_user("p-viewer")
    project = make_project(owner)
    add_member(project, viewer, Role.VIEWER)
    inside = f"{django_settings.BASE_DIR}/var/tiny-models"
    outside = "/srv/host-only/secret-layout/tiny-models"
    run = EvaluationRun.objects.create(
        project=project, engine="maskrcnn", state="failed", weights=f"{outside}/maskrcnn (tiny)",
        fingerprint=f"maskrcnn:{inside}/maskrcnn", device="cpu",
        error=f"FileNotFoundError: [Errno 2] No such file or directory: '{outside}/maskrcnn/model.pt'")
    EvaluationRun.objects.create(project=project, engine="gdino-sam2", state="done",
                                 fingerprint=f"{outside}/config.json|timm:[\"{outside}/dinov3.pth\"]|head=None",
                                 weights="grounding_dino / sam2_tiny.pt / vit_tiny")
    ModelVersion.objects.create(project=project, kind="head", number=1, file="models/h.npz",
                                embedder_version=f'timm:["{outside}/dinov3.pth", 224]',
                                metrics={"embedder": f'timm:["{outside}/dinov3.pth", 224]', "heldout_top1": 0.5})
    TrainingRun.objects.create(project=project, kind="maskrcnn", state="failed",
                               error=f"OSError: cannot read {outside}/maskrcnn/model.pt")
    base = f"/api/projects/{project.pk}"
    bodies = [client_for(viewer).get(f"{base}/{what}/").content.decode()
              for what in ("evaluations", "trainings", "models")]
    bodies.append(client_for(viewer).get(f"{base}/evaluations/{run.pk}/").content.decode())
    for body in bodies:
        assert "/srv/" not in body and str(django_settings.BASE_DIR) not in body, body
    detail = client_for(viewer).get(f"{base}/evaluations/{run.pk}/").json()
    assert detail["weights"] == "maskrcnn (tiny)"
    assert detail["fingerprint"] == "maskrcnn:var/tiny-models/maskrcnn"
    listed = client_for(viewer).get(f"{base}/evaluations/").json()["results"]
    assert listed[0]["fingerprint"] == 'config.json|timm:["dinov3.pth"]|head=None'
    assert listed[0]["weights"] == "grounding_dino / sam2_tiny.pt / vit_tiny"  # names stay as they are
    model = client_for(viewer).get(f"{base}/models/").json()["results"][0]
    assert model["embedder_version"] == 'timm:["dinov3.pth", 224]' and model["metrics"]["heldout_top1"] == 0.5


# -- F15: a project deleted under a running run --------------------------------------------------

def test_a_run_whose_project_is_deleted_stops_quietly(caplog):
    from backend.projects.services import delete_project

    owner = make_user("d-owner")
    project = make_project(owner)
    run = TrainingRun.objects.create(project=project, kind="head", created_by=owner)

    def work(r):
        services.record_progress(r, progress=0.1)
        delete_project(project_id=project.pk, version=Project.objects.get(pk=project.pk).version, by=owner)
        services.record_progress(r, progress=0.2)  # the worker's next step
        raise AssertionError("the run went on after its project was deleted")

    with caplog.at_level(logging.INFO, logger="razmetka.learning"):
        tasks._guarded(run, work)  # raised DoesNotExist out of fail()'s refresh_from_db
    records = [r for r in caplog.records if r.name == "razmetka.learning"]
    assert [r.levelno for r in records] == [logging.INFO], [r.getMessage() for r in records]
    assert "was deleted while it ran" in records[0].getMessage()
    assert not TrainingRun.objects.filter(pk=run.pk).exists()
