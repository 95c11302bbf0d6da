"""Work committed "queued" reaches a worker even when the broker was down at commit time.

Before, the commit hook's publish raised after the commit: the API answered 503 "nothing was
changed" for an upload (or export) that was there, queued, and no message would ever carry it; a
repeated finish was a no-op, so the upload sat "queued" for ever. Now the record notes when its
message reached the broker and the workers' sweeper sends the ones that have none."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.exchange.models import ExportJob
from backend.images.models import UploadSession
from backend.jobs.sweeper import sweep_once

from .factories import make_image, make_project, make_user
from .test_chunked_uploads import noisy_jpeg, open_session, put_chunk, send_all
from .test_job_recovery import private_queues, shell_with_broker_down, take_messages

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_upload_and_an_export_finished_while_the_broker_is_down_are_sent_by_the_sweeper(settings, client_for):
    private_queues(settings, "recordoutbox")
    owner = make_user("outbox-uploader")
    project = make_project(owner)
    make_image(project, seed=1)  # something for the export to list (an export of nothing is refused)
    data = noisy_jpeg(5)
    client = client_for(owner)
    sid = open_session(client, project, "while-redis-restarts.jpg", data)["id"]
    assert put_chunk(client, project, sid, 0, data).status_code == 200  # the bytes need no broker

    # Each record's clock is set an hour ahead as soon as it exists: out of every sweeper's reach
    # (a test worker's own sweeper would send it to its queue) until this test ages it.
    script = (
        "from datetime import timedelta; from django.utils import timezone; later = timezone.now() + timedelta(hours=1); "
        "from django.contrib.auth import get_user_model; from backend.projects.models import Project; "
        "from backend.images.models import UploadSession; from backend.exchange.models import ExportJob; "
        "from backend.images.upload_sessions import finish_session; from backend.exchange.services import start_export; "
        f"project = Project.objects.get(pk={project.pk}); user = get_user_model().objects.get(pk={owner.pk}); "
        f"session = finish_session(project=project, user=user, session_id={sid}); "
        "UploadSession.objects.filter(pk=session.pk).update(updated_at=later); print('SESSION', session.status); "
        "job = start_export(project=project, user=user, format='coco', include_empty_images=True); "
        "ExportJob.objects.filter(pk=job.pk).update(created_at=later); print('EXPORT', job.pk)"
    )
    out = shell_with_broker_down(settings, script)
    assert out.returncode == 0, out.stderr[-2000:]  # before: the broker's error, raised after the commit
    assert "SESSION queued" in out.stdout
    export_id = int(out.stdout.split("EXPORT")[1].split()[0])
    session, export = UploadSession.objects.get(pk=sid), ExportJob.objects.get(pk=export_id)
    assert (session.status, session.dispatched_at, export.status, export.dispatched_at) == ("queued", None, "queued", None)
    assert take_messages(settings.QUEUE_CPU) == []

    UploadSession.objects.filter(pk=sid).update(updated_at=timezone.now())
    ExportJob.objects.filter(pk=export_id).update(created_at=timezone.now())
    assert sweep_once()["records_sent"] == 0, "within the grace period the commit hook may still be sending"
    UploadSession.objects.filter(pk=sid).update(updated_at=timezone.now() - timedelta(seconds=60))
    ExportJob.objects.filter(pk=export_id).update(created_at=timezone.now() - timedelta(seconds=60))
    assert sweep_once()["records_sent"] == 2
    assert sorted(take_messages(settings.QUEUE_CPU)) == [("exchange.run_export", [export_id]), ("images.process_upload", [sid])]
    assert not UploadSession.objects.filter(pk=sid, dispatched_at=None).exists()
    assert not ExportJob.objects.filter(pk=export_id, dispatched_at=None).exists()
    assert sweep_once()["records_sent"] == 0 and take_messages(settings.QUEUE_CPU) == []


def test_a_record_sent_at_commit_is_not_sent_again(settings, client_for):
    private_queues(settings, "recordsent")
    owner = make_user("outbox-sent")
    project = make_project(owner)
    sid = send_all(client_for(owner), project, "sent.jpg", noisy_jpeg(6))["id"]
    assert take_messages(settings.QUEUE_CPU) == [("images.process_upload", [sid])]
    UploadSession.objects.filter(pk=sid).update(updated_at=timezone.now() - timedelta(seconds=60))
    assert UploadSession.objects.get(pk=sid).dispatched_at is not None
    assert sweep_once()["records_sent"] == 0 and take_messages(settings.QUEUE_CPU) == []


def test_a_reviewers_class_fix_saved_while_the_broker_is_down_is_not_answered_as_a_failure(settings):
    """The fix commits, then the gallery learning it queues cannot reach the broker: that derived
    work is lost with a log line (a later change redoes it), the request does not fail. Before, the
    commit hook raised after the commit and the API answered 503 "nothing was changed" for a
    saved review (its retry then met a version conflict)."""
    from backend.annotations.models import Annotation

    from .test_gallery_learning import WRONG, proposal, setup_project

    private_queues(settings, "derivedoutbox")
    admin = make_user("outbox-reviewer")
    project, wrench, spanner = setup_project(admin)  # learns from reviews
    fixed = proposal(make_image(project, seed=1), wrench, WRONG)
    script = (
        "from django.contrib.auth import get_user_model; from backend.projects.models import Project; "
        "from backend.annotations.services import update_annotation; "
        f"a = update_annotation(project=Project.objects.get(pk={project.pk}), annotation_id={fixed.pk}, "
        f"user=get_user_model().objects.get(pk={admin.pk}), version={fixed.version}, class_id={spanner.pk}); "
        "print('VERSION', a.version)"
    )
    out = shell_with_broker_down(settings, script)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"VERSION {fixed.version + 1}" in out.stdout
    assert Annotation.objects.get(pk=fixed.pk).label_class_id == spanner.pk
    assert "gallery.learn_from_change" in out.stderr and "not sent" in out.stderr
