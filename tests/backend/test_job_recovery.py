"""Leases: work held by a dead worker comes back in about a minute with the default settings, a
live worker's long batch is never run twice, and duplicate messages do nothing."""
from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from backend.annotations.models import Annotation, AnnotationEvent
from backend.jobs import services
from backend.jobs.models import ItemStatus, JobStatus, PrelabelJob, PrelabelJobImage
from backend.jobs.sweeper import sweep_once

from ..worker import start_worker, stop_worker
from .factories import make_image, make_project, make_user
from .test_jobs import build_project, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)


# --- the sweeper and the claim, on the real database and broker (no worker) -----------------

def private_queues(settings, name: str) -> str:
    """Queues nobody consumes: re-queued messages stay there for the test to read."""
    prefix = f"{name}{os.getpid()}-{time.monotonic_ns()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    return settings.QUEUE_GPU


def shell_with_broker_down(settings, script: str):
    """Run `script` in `manage.py shell` on the test database and this test's queues, with a Redis
    that does not exist (the broker is down for that process only); returns the finished process."""
    import subprocess
    import sys

    env = {**os.environ, "RAZMETKA_DB_NAME": connection.settings_dict["NAME"], "REDIS_URL": "unix:///nonexistent/redis.sock",
           "RAZMETKA_QUEUE_PREFIX": settings.QUEUE_CPU[: -len("cpu")]}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], env=env, capture_output=True, text=True,
                         timeout=120)
    print(f"the script with the broker down took {time.monotonic() - started:.1f} s (process start included)")
    return out


def take_messages(queue: str) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on `queue`, removing them."""
    from backend.config.celery import app

    found = []
    with app.connection_for_write() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(timeout=0.5)
                except simple.Empty:
                    return found
                found.append((message.headers["task"], message.payload[0]))
                message.ack()
        finally:
            simple.close()


def job_with_items(n: int, queue: str) -> tuple[PrelabelJob, list[int]]:
    owner = make_user(f"owner{time.monotonic_ns()}")
    project = make_project(owner)
    images = [make_image(project, seed=i) for i in range(n)]
    job = services.start_job(project=project, user=owner)
    assert len(take_messages(queue)) >= 1  # start_job's own batch: nobody runs it here
    return job, [i.pk for i in images]


def lease(job: PrelabelJob, image_id: int, *, seconds: float, attempts: int = 1, owner: str = "dead-host:4242:abc") -> None:
    """The state a worker leaves when it claimed the item `seconds` from expiry (negative: lapsed)."""
    job.items.filter(image_id=image_id).update(
        status=ItemStatus.RUNNING, attempts=attempts, lease_owner=owner,
        leased_until=timezone.now() + timedelta(seconds=seconds),
    )


def test_sweep_requeues_a_lapsed_lease_and_leaves_a_live_one(settings):
    queue = private_queues(settings, "sweep")
    job, (dead, live, pending) = job_with_items(3, queue)
    lease(job, dead, seconds=-1)
    lease(job, live, seconds=60)

    assert sweep_once() == {"requeued": 1, "failed": 0, "cancelled": 0, "sent": 0, "records_sent": 0, "stopped": 0}
    items = {i.image_id: i for i in job.items.all()}
    assert items[dead].status == ItemStatus.PENDING and items[dead].leased_until is None and items[dead].lease_owner == ""
    assert items[live].status == ItemStatus.RUNNING and items[live].lease_owner == "dead-host:4242:abc"
    assert items[pending].status == ItemStatus.PENDING
    assert take_messages(queue) == [("jobs.run_batch", [job.pk, [dead]])], "one new message for the lapsed item"
    assert sweep_once() == {"requeued": 0, "failed": 0, "cancelled": 0, "sent": 0, "records_sent": 0, "stopped": 0}, "a second sweep re-queues nothing"
    assert take_messages(queue) == []


def test_an_item_that_killed_three_workers_fails_instead_of_coming_back(settings):
    queue = private_queues(settings, "sweep3")
    job, (poison, fine) = job_with_items(2, queue)
    lease(job, poison, seconds=-1, attempts=services.MAX_ATTEMPTS)
    lease(job, fine, seconds=-1, attempts=1)

    assert sweep_once() == {"requeued": 1, "failed": 1, "cancelled": 0, "sent": 0, "records_sent": 0, "stopped": 0}
    item = job.items.get(image_id=poison)
    assert item.status == ItemStatus.FAILED and item.error.startswith("gave up after 3 attempts"), item.error
    assert item.leased_until is None
    assert take_messages(queue) == [("jobs.run_batch", [job.pk, [fine]])]
    job.refresh_from_db()
    assert (job.processed, job.failed, job.status) == (1, 1, JobStatus.QUEUED)


def test_a_cancelled_jobs_lapsed_items_are_cancelled_not_requeued(settings):
    queue = private_queues(settings, "sweepc")
    job, (held, waiting) = job_with_items(2, queue)
    lease(job, held, seconds=-1)
    services.cancel_job(project=job.project, job_id=job.pk)  # closes the held (running) item too

    assert sweep_once() == {"requeued": 0, "failed": 0, "cancelled": 0, "sent": 0, "records_sent": 0, "stopped": 0}
    assert set(job.items.values_list("status", flat=True)) == {ItemStatus.CANCELLED}
    assert take_messages(queue) == []


def test_claim_skips_items_a_live_worker_holds_and_takes_over_lapsed_ones(settings):
    queue = private_queues(settings, "claim")
    job, (live, lapsed, done) = job_with_items(3, queue)
    lease(job, live, seconds=60)
    lease(job, lapsed, seconds=-1)
    job.items.filter(image_id=done).update(status=ItemStatus.DONE)

    _, todo = services.claim_items(job_id=job.pk, image_ids=[live, lapsed, done], owner="me:1:x")
    assert todo == [lapsed]
    taken = job.items.get(image_id=lapsed)
    assert (taken.attempts, taken.lease_owner, taken.status) == (2, "me:1:x", ItemStatus.RUNNING)
    assert taken.leased_until > timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS - 5)
    assert job.items.get(image_id=live).attempts == 1, "a duplicate message does not touch a live lease"


def test_a_job_another_process_holds_is_left_to_the_next_sweep(settings):
    """SKIP LOCKED: while another transaction holds the job row, a sweeper neither waits nor
    re-queues; afterwards exactly one sweep does."""
    queue = private_queues(settings, "sweepl")
    job, (dead,) = job_with_items(1, queue)
    lease(job, dead, seconds=-1)
    locked, release = threading.Event(), threading.Event()

    def hold_the_job_row():
        try:
            with transaction.atomic():
                PrelabelJob.objects.select_for_update().get(pk=job.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_job_row)
    holder.start()
    try:
        assert locked.wait(10)
        assert sweep_once()["requeued"] == 0
    finally:
        release.set()
        holder.join()
    assert sweep_once()["requeued"] == 1
    assert take_messages(queue) == [("jobs.run_batch", [job.pk, [dead]])]


# --- real workers with the tiny models and the DEFAULT time limit (visibility timeout: 1 h) ---

def worker_env(tiny_models_config: str, prefix: str, **extra) -> dict:
    env = {"RAZMETKA_ML_CONFIG": tiny_models_config, "RAZMETKA_QUEUE_PREFIX": prefix, **extra}
    # The defaults under test: no shortened time limit, restore interval or lease.
    for name in ("CELERY_TASK_TIME_LIMIT", "CELERY_RESTORE_INTERVAL", "JOB_LEASE_SECONDS", "JOB_HEARTBEAT_SECONDS", "JOB_SWEEP_SECONDS"):
        assert name not in os.environ, f"{name} is set in the environment; this test is about the defaults"
    return env


def worker_queues(settings, name: str) -> str:
    prefix = f"{name}{os.getpid()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    settings.QUEUE_INTERACTIVE = f"{prefix}interactive"
    return prefix


def model_annotations_per_image(job: PrelabelJob) -> None:
    """Exactly one set of model annotations per image, each created once in the audit trail."""
    for item in job.items.all():
        annotations = Annotation.objects.filter(image_id=item.image_id)
        assert annotations.count() == item.detections, "exactly one set of model annotations per image"
        assert set(annotations.values_list("job_id", flat=True)) <= {job.pk}
        events = AnnotationEvent.objects.filter(image_id=item.image_id)
        assert events.filter(action="created").count() == item.detections, "each proposal created once"
        assert not events.filter(action="deleted").exists(), "no first set written and then replaced"
        assert item.lease_owner == "" and item.leased_until is None


@pytest.mark.worker
def test_sigkill_mid_batch_recovers_in_about_a_minute_with_default_settings(settings, tiny_models_config, django_db_setup):
    from backend.config.settings.redis import CELERY_TASK_TIME_LIMIT

    assert CELERY_TASK_TIME_LIMIT == 1800, "the broker alone would redeliver only after an hour"
    prefix = worker_queues(settings, "recover")
    settings.PRELABEL_BATCH_SIZE = 4
    env = worker_env(tiny_models_config, prefix)
    owner, project, _ = build_project(n_images=8)
    first = start_worker(extra_env=env, name="recover-a")
    try:
        job = services.start_job(project=project, user=owner)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            in_flight = list(job.items.filter(status=ItemStatus.RUNNING, leased_until__isnull=False))
            if in_flight:
                break
            time.sleep(0.02)
        else:
            pytest.fail("no batch was ever in flight")
    finally:
        stop_worker(first, hard=True)  # SIGKILL: no ack, no cleanup, mid-batch
    killed_at = time.monotonic()
    killed = {i.image_id for i in job.items.filter(status=ItemStatus.RUNNING)}
    assert killed, "the batch finished before the kill"
    killed_batch = sorted(i.image_id for i in in_flight)

    second = start_worker(extra_env=env, name="recover-b")
    try:
        # Finishing at all, long before the hour of the visibility timeout, is the lease's doing.
        job = wait_for_job(job.pk, timeout=240)
        recovered_s = time.monotonic() - killed_at
        print(f"\nrecovered {len(killed)} in-flight images; job done {recovered_s:.0f} s after the kill")
        assert job.status == JobStatus.DONE and (job.processed, job.failed) == (8, 0), job.error
        model_annotations_per_image(job)
        for item in job.items.all():
            assert item.attempts == (2 if item.image_id in killed else 1), (item.image_id, item.attempts)
        before = (
            Annotation.objects.filter(project=project).count(), AnnotationEvent.objects.filter(project=project).count(),
            dict(job.items.values_list("image_id", "attempts")),
        )

        # The broker hands the killed message out again (after its visibility timeout): nothing happens.
        from backend.jobs.tasks import run_batch

        result = run_batch.apply_async(args=[job.pk, killed_batch], queue=settings.QUEUE_GPU, ignore_result=False).get(timeout=60)
        assert result == {"processed": 0}
    finally:
        stop_worker(second)
    after = (
        Annotation.objects.filter(project=project).count(), AnnotationEvent.objects.filter(project=project).count(),
        dict(job.items.values_list("image_id", "attempts")),
    )
    assert after == before


@pytest.mark.worker
def test_a_live_workers_batch_longer_than_its_lease_is_never_run_twice(settings, tiny_models_config, django_db_setup):
    """Each image waits 30 s before its write (a test-only setting), so the two-image batch holds
    its leases for a minute: twice the 30 s lease, with sweeps every 15 s meanwhile."""
    prefix = worker_queues(settings, "slow")
    settings.PRELABEL_BATCH_SIZE = 2
    env = worker_env(tiny_models_config, prefix, JOB_TEST_ITEM_DELAY_S="30")
    owner, project, _ = build_project(n_images=2)
    worker = start_worker(extra_env=env, name="slow")
    try:
        job = services.start_job(project=project, user=owner)
        deadline = time.monotonic() + 120
        while not job.items.filter(status=ItemStatus.RUNNING).count() == 2:
            assert time.monotonic() < deadline, "the batch never started"
            time.sleep(0.1)
        first_lease = max(job.items.values_list("leased_until", flat=True))
        ids = list(job.items.values_list("image_id", flat=True))

        # Wait past the first lease's end: without the heartbeat the batch would now be lapsed.
        while timezone.now() < first_lease + timedelta(seconds=2):
            time.sleep(0.2)
        statuses = list(job.items.values_list("status", flat=True))
        assert ItemStatus.RUNNING in statuses and ItemStatus.PENDING not in statuses
        assert max(job.items.filter(status=ItemStatus.RUNNING).values_list("leased_until", flat=True)) > first_lease, "renewed"

        # A duplicate message now finds the images held by a live worker and takes nothing.
        _, todo = services.claim_items(job_id=job.pk, image_ids=ids, owner="duplicate:1:x")
        assert todo == []

        # Proof that sweeps run while the batch does: a dead worker's item (lapsed lease, its
        # message gone) of another job is re-queued before the slow batch ends.
        orphan_owner, orphan_project, _ = build_project(n_images=1)
        settings.QUEUE_GPU = f"nobody-{prefix}gpu"
        orphan = services.start_job(project=orphan_project, user=orphan_owner)
        settings.QUEUE_GPU = f"{prefix}gpu"
        orphan.items.update(status=ItemStatus.RUNNING, attempts=1, lease_owner="dead:1:x", leased_until=timezone.now() - timedelta(seconds=1))
        while orphan.items.filter(status=ItemStatus.RUNNING).exists():
            assert time.monotonic() < deadline + 60, "the sweeper never re-queued the orphan"
            time.sleep(0.2)
        assert PrelabelJob.objects.get(pk=job.pk).status == JobStatus.RUNNING, "swept while the slow batch ran"
        # Re-queued (pending), or already run by this worker if the slow batch ended just now.
        assert not orphan.items.filter(lease_owner="dead:1:x").exists()
        if PrelabelJob.objects.get(pk=orphan.pk).status not in (JobStatus.DONE, JobStatus.FAILED):
            services.cancel_job(project=orphan_project, job_id=orphan.pk)  # its new message then does nothing

        job = wait_for_job(job.pk, timeout=180)
    finally:
        stop_worker(worker)
    assert job.status == JobStatus.DONE and (job.processed, job.failed) == (2, 0), job.error
    assert list(job.items.values_list("attempts", flat=True)) == [1, 1], "each image processed exactly once"
    model_annotations_per_image(job)
    assert PrelabelJobImage.objects.filter(status=ItemStatus.RUNNING).count() == 0


# --- the outbox: items whose message never reached the broker --------------------------------

def test_a_job_started_while_the_broker_is_down_is_sent_by_the_sweeper(settings):
    """start_job commits, then its commit hook cannot reach Redis: the job must not sit queued
    forever (the chaos drill found this after SIGKILL of Redis during a sweep)."""
    queue = private_queues(settings, "outbox")
    owner = make_user("outbox-owner")
    project = make_project(owner)
    images = [make_image(project, seed=i) for i in range(5)]
    # The items' clock is set an hour ahead as soon as they exist: out of every sweeper's reach (a
    # test worker's own sweeper would send them to its queue) until this test ages them.
    script = (
        "from datetime import timedelta; from django.utils import timezone; "
        "from backend.jobs import services; from backend.projects.models import Project; "
        "from django.contrib.auth import get_user_model; "
        f"job = services.start_job(project=Project.objects.get(pk={project.pk}), user=get_user_model().objects.get(pk={owner.pk})); "
        "job.items.update(updated_at=timezone.now() + timedelta(hours=1)); "
        "print('JOB', job.pk)"
    )
    out = shell_with_broker_down(settings, script)
    assert out.returncode == 0, out.stderr[-2000:]
    job = PrelabelJob.objects.get(pk=int(out.stdout.split("JOB")[1].split()[0]))
    assert job.items.count() == 5 and not job.items.exclude(dispatched_at=None).exists()
    assert take_messages(queue) == []

    job.items.update(updated_at=timezone.now())
    assert sweep_once()["sent"] == 0, "within the grace period the commit hook may still be sending"
    job.items.update(updated_at=timezone.now() - timedelta(seconds=60))
    assert sweep_once()["sent"] == 5
    messages = take_messages(queue)
    assert sorted(i for _, batch in messages for i in batch[1]) == sorted(i.pk for i in images)
    assert not job.items.filter(dispatched_at=None).exists()
    assert sweep_once()["sent"] == 0 and take_messages(queue) == []


def test_requeued_items_are_sent_again_if_their_message_was_lost(settings):
    queue = private_queues(settings, "outbox2")
    job, (dead, _, _) = job_with_items(3, queue)
    lease(job, dead, seconds=-1)
    # The sweep re-queues it; pretend its commit hook could not reach the broker.
    assert sweep_once()["requeued"] == 1
    assert len(take_messages(queue)) == 1
    job.items.filter(image_id=dead).update(dispatched_at=None, updated_at=timezone.now() - timedelta(seconds=60))
    assert sweep_once()["sent"] == 1
    assert [batch[1] for _, batch in take_messages(queue)] == [[dead]]


def test_a_sent_batch_whose_message_is_gone_is_sent_again(settings):
    """kombu pops a message before the worker records it as unacked: a gpu worker killed right
    then took a batch along, and its items stayed pending, marked sent, for good (black-box ml9)."""
    from backend.jobs.tasks import run_batch

    settings.PRELABEL_BATCH_SIZE = 2
    queue = private_queues(settings, "lost")
    job, (a, b, c, d) = job_with_items(4, queue)  # both batches' messages were taken: lost
    run_batch.apply_async(args=[job.pk, [a, b]], queue=queue, ignore_result=True)  # this one waits again
    job.items.update(dispatched_at=timezone.now() - timedelta(hours=1))

    assert sweep_once()["sent"] == 2
    assert job.items.filter(image_id__in=[c, d], dispatched_at__gt=timezone.now() - timedelta(minutes=1)).count() == 2
    assert sweep_once()["sent"] == 0, "sent again only after the grace has passed once more"
    assert sorted(take_messages(queue)) == [("jobs.run_batch", [job.pk, [a, b]]), ("jobs.run_batch", [job.pk, [c, d]])]
