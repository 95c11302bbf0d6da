"""A job whose images are deleted before it runs them: it counts only what it still has, and one
left with nothing ends at once. Such a job stayed "running" for ever (no batch would write it), or
ended "Every image failed. First error: None"; a finished one read 57/75."""
from __future__ import annotations

import pytest

from backend.jobs.models import ItemStatus, PrelabelJob
from backend.jobs.services import start_job

from .factories import make_image, make_project, make_user
from .test_job_recovery import private_queues

pytestmark = pytest.mark.django_db(transaction=True)


def test_deleting_every_image_of_a_job_ends_it_and_some_keeps_its_counts_true(client_for, settings):
    private_queues(settings, "deleted")  # nobody runs the job: its images go first
    owner = make_user("owner")
    project = make_project(owner)
    images = [make_image(project, seed=s) for s in range(1, 6)]
    lonely = start_job(project=project, user=owner, images=[images[0].pk, images[1].pk])
    shared = start_job(project=project, user=owner, images=[i.pk for i in images[1:]])
    shared.items.filter(image=images[4]).update(status=ItemStatus.DONE)
    PrelabelJob.objects.filter(pk=shared.pk).update(processed=1)
    for image in images[:3]:
        image.refresh_from_db()
        assert client_for(owner).delete(f"/api/projects/{project.pk}/images/{image.pk}/?version={image.version}").status_code == 204
    body = client_for(owner).get(f"/api/projects/{project.pk}/jobs/{lonely.pk}/").json()
    assert body["status"] == "cancelled" and "deleted" in body["error"], body
    body = client_for(owner).get(f"/api/projects/{project.pk}/jobs/{shared.pk}/").json()
    assert body["status"] == "queued" and (body["total"], body["processed"], body["failed"]) == (2, 1, 0), body


def test_segmenting_an_image_deleted_meanwhile_is_a_404_not_a_503():
    """The worker's "Image matching query does not exist" came back as 503 "Segmentation failed"."""
    from backend.core.errors import NotFound
    from backend.jobs.interactive import SegmentUnavailable, _wait

    class WorkerRaised:  # what Celery's AsyncResult.get does with the task's exception
        def get(self, **_):
            raise LookupError("Image matching query does not exist.")

    project = make_project(make_user("owner"))
    image = make_image(project)
    with pytest.raises(SegmentUnavailable):
        _wait(WorkerRaised(), image.pk)
    image.delete()
    with pytest.raises(NotFound):
        _wait(WorkerRaised(), image.pk)
