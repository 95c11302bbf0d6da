"""Round 9, learning: a training whose message a dying worker took is sent again (F2), a head
activated while a job runs reaches what the job writes afterwards (F3), and a damaged or missing
model file fails with a message that names the model version and what to do (F4)."""
import time
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from backend.core import outbox
from backend.jobs import sweeper
from backend.learning import selectors, services, tasks
from backend.learning.models import ModelVersion, TrainingRun

from .factories import make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


# -- F2: a message lost after it reached the broker -----------------------------------------------

def test_a_sent_training_whose_message_is_gone_is_sent_again(settings, monkeypatch):
    """kombu's Redis transport pops a message (BRPOP) before the worker records it as unacked: an
    idle gpu worker killed right then takes it along. The run, marked sent, stayed queued for ever
    and refused every later training of its kind. The sweeper sends it again, but only when its
    message is nowhere in the broker: one that waits in its queue is left alone."""
    from backend.core import redis_client

    queue = f"round9-lost-{time.monotonic_ns()}"  # no worker listens here
    settings.QUEUE_GPU = queue
    owner = make_user("lost-owner")
    project = make_project(owner)
    long_ago = timezone.now() - timedelta(hours=1)
    waiting = TrainingRun.objects.create(project=project, kind="head", created_by=owner)
    lost = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner)
    started = TrainingRun.objects.create(project=project, kind="head", created_by=owner, state="running",
                                         started_at=long_ago)
    fresh = TrainingRun.objects.create(project=project, kind="head", created_by=owner)
    TrainingRun.objects.filter(pk__in=[waiting.pk, lost.pk, started.pk]).update(created_at=long_ago,
                                                                                 dispatched_at=long_ago)
    TrainingRun.objects.filter(pk=fresh.pk).update(dispatched_at=timezone.now())
    # `waiting`'s real message is in its queue (the gpu worker is busy or down); `lost`'s is not.
    tasks.run_training.apply_async(args=[waiting.pk], queue=queue, ignore_result=True)
    try:
        sent = []
        monkeypatch.setattr(outbox, "publish", lambda task, *, args, queue, kwargs=None: sent.append(
            (task.name, args, queue)) or True)
        totals = sweeper.sweep_once()
        # A live worker's own sweeper (the session's shared worker) may have sent it first (CI,
        # stop 32): then this sweep finds it sent already. Either way only `lost` went again.
        assert sent in ([("learning.run_training", [lost.pk], queue)], []), sent
        assert totals["records_sent"] == len(sent)
        # Sent again now: the next sweeps leave it alone until LOST_GRACE has passed once more.
        assert TrainingRun.objects.get(pk=lost.pk).dispatched_at > long_ago
        sent.clear()
        sweeper.sweep_once()
        assert sent == []
    finally:
        redis_client.shared().delete(queue)


# -- F4: a damaged or missing model file -----------------------------------------------------------

def _version(project, owner, kind: str, content: bytes, state: str = "active") -> ModelVersion:
    version = ModelVersion(project=project, kind=kind, number=1, state=state, created_by=owner)
    version.file.save(f"round9-{kind}.{'npz' if kind == 'head' else 'zip'}", ContentFile(content), save=False)
    version.save()
    return version


@pytest.mark.parametrize("kind", ["head", "maskrcnn"])
@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_broken_model_file_names_the_version_and_what_to_do(kind, damage, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # a fresh unpack folder for the Mask R-CNN checkpoint
    owner = make_user(f"broken-{kind}-{damage}")
    project = make_project(owner)
    version = _version(project, owner, kind, b"PK\x03\x04 this is not a whole file")
    if damage == "missing":
        version.file.storage.delete(version.file.name)
    with pytest.raises(selectors.ModelUnavailable) as raised:
        if kind == "head":
            selectors.active_transform(project.pk)
        else:
            selectors.active_maskrcnn_checkpoint(project.pk)
    message = str(raised.value)
    what = "projection head" if kind == "head" else "Mask R-CNN"
    assert message == (f"The active model version #1 ({what}) can't be loaded: its file is damaged or missing. "
                       "Activate another version or train again."), message
    assert "/" not in message and "Errno" not in message and version.file.name not in message
    # A job's frozen head that is no longer active says so too.
    if kind == "head":
        ModelVersion.objects.filter(pk=version.pk).update(state="retired")
        with pytest.raises(selectors.ModelUnavailable, match=r"^Model version #1 \(projection head, retired\)"):
            selectors.head_transform(version.pk)
    else:
        assert not list((tmp_path / "models").iterdir()), "a failed unpack left a folder behind"


def test_a_training_or_evaluation_that_meets_a_broken_model_fails_with_its_message():
    owner = make_user("broken-run")
    project = make_project(owner)
    run = TrainingRun.objects.create(project=project, kind="head", created_by=owner)

    def work(_run):
        raise selectors.ModelUnavailable("The active model version #3 (projection head) can't be loaded: …")

    tasks._guarded(run, work)
    run.refresh_from_db()
    assert run.state == "failed" and run.error.startswith("The active model version #3"), run.error


def test_a_database_restart_under_a_run_is_retried_not_failed():
    """Black-box round 16: an evaluation whose PostgreSQL restarted under it ended failed with
    "OperationalError: terminating connection due to administrator command"; the error now goes
    to run_or_retry (which sends the task again) and the run stays running, not failed."""
    from django.db import OperationalError

    from backend.learning import tasks
    from backend.learning.models import TrainingRun

    owner = make_user("bounce")
    project = make_project(owner)
    run = TrainingRun.objects.create(project=project, kind="head", created_by=owner)

    def work(_run):
        raise OperationalError("terminating connection due to administrator command")

    with pytest.raises(OperationalError):
        tasks._guarded(run, work)
    run.refresh_from_db()
    assert run.state == "running" and run.error == "", (run.state, run.error)


@pytest.mark.worker
def test_a_job_with_a_broken_active_head_fails_naming_it(celery_worker, client_for, settings, tiny_models_config):
    from backend.jobs.models import PrelabelJobImage

    from .test_jobs import wait_for_job
    from .test_learning_jobs import reviewed_project

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner, project, images = reviewed_project(n_reviewed=0, n_pending=2)
    _version(project, owner, "head", b"PK\x03\x04 truncated")
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": "all"}, format="json")
    assert response.status_code == 201, response.content
    job = wait_for_job(response.json()["id"])
    errors = set(PrelabelJobImage.objects.filter(job=job).values_list("error", flat=True))
    assert job.status == "failed" and len(errors) == 1, (job.status, errors)
    error = errors.pop()
    assert "The active model version #1 (projection head) can't be loaded" in error, error
    assert "BadZipFile" not in error and "/" not in error, error
    assert error.startswith("The active model version #1"), error  # not "ModelUnavailable: …"


# -- F3: a head activated while a job runs ---------------------------------------------------------

def _head_for(project) -> tuple[bytes, str]:
    """A residual head far from the identity, on the embedder of the project's pending objects."""
    from ml.head import Head

    from backend.annotations.models import Annotation

    annotation = Annotation.objects.filter(project=project, embedding__isnull=False).exclude(embedder_version="").first()
    dim = len(annotation.embedding)
    rng = np.random.default_rng(9)
    head = Head([rng.normal(0, 3, (dim, dim))], [rng.normal(0, 1, dim)],
                {"embedder_version": annotation.embedder_version})
    return head.to_bytes(), annotation.embedder_version


@pytest.mark.worker
def test_objects_a_running_job_writes_after_an_activation_get_the_heads_scores(celery_worker, settings,
                                                                             tiny_models_config):
    """A job matches with the head active at its start. What it writes after an activation (536 of
    599 objects in the black-box run) missed the activation's re-scoring and kept the scores
    without the head. Once the jobs that ran at the activation are over, the pending objects are
    re-scored again."""
    from backend.annotations.models import Annotation
    from backend.jobs.models import PrelabelJob

    from .test_learning_jobs import reviewed_project

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner, project, images = reviewed_project(n_reviewed=0, n_pending=3)
    pending = {a.pk: a.class_score for a in Annotation.objects.filter(project=project, class_review="pending")}
    assert pending
    content, embedder_version = _head_for(project)
    version = _version(project, owner, "head", content, state="candidate")
    ModelVersion.objects.filter(pk=version.pk).update(embedder_version=embedder_version)
    # A job of this project is running when the head is activated.
    running = PrelabelJob.objects.create(project=project, number=99, status="running", total=1, created_by=owner,
                                         settings_snapshot={"head_version_id": None})
    services.activate_version(project=project, version_id=version.pk, user=owner, version=version.version)

    def scores():
        return {a.pk: a.class_score for a in Annotation.objects.filter(pk__in=pending)}

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and scores() == pending:
        time.sleep(0.3)
    with_head = scores()
    assert with_head != pending, "activating the head did not re-score pending objects"
    # The running job then writes its objects, matched without the head (frozen at its start).
    Annotation.objects.filter(pk__in=pending).update(class_score=0.123)
    time.sleep(1)
    PrelabelJob.objects.filter(pk=running.pk).update(status="done", finished_at=timezone.now())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and scores() != with_head:
        time.sleep(0.3)
    assert scores() == pytest.approx(with_head), "objects written by a job running at the activation kept stale scores"


@pytest.mark.django_db(transaction=True)
def test_a_runs_checks_between_steps_ride_out_a_dropped_connection(monkeypatch):
    """Black-box round 16b: a PostgreSQL restart 3 s into a Mask R-CNN training broke its
    connection; the next progress check raised and the whole training ran again (then failed). The
    check drops the broken connection and asks again."""
    import psycopg
    from django.db import connection

    from backend.core import task_retry
    from backend.learning import services
    from backend.learning.models import TrainingRun

    monkeypatch.setattr(task_retry, "RETRY_AFTER_S", 0.2)
    owner = make_user("bounced")
    project = make_project(owner)
    run = TrainingRun.objects.create(project=project, kind="head", created_by=owner, state="running")
    for check in (lambda: services.check_live(run), lambda: services.record_progress(run, progress=0.5)):
        pid = connection.cursor().connection.info.backend_pid
        params = connection.get_connection_params()
        with psycopg.connect(**{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")},
                             autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])  # what a restart does to it
        check()
    run.refresh_from_db()
    assert run.state == "running" and run.progress == 0.5
