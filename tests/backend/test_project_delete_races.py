"""Writes that meet the project's deletion: a double-clicked Delete, a PATCH or a job start sent as
the project goes. Each passed the view's lookup before the delete committed, then found no project
under its row lock and answered a 500 (Django's HTML page); now a JSON 404."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from backend.projects.models import Project

from .factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_on_a_lock(count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is frozen
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.05)
    raise AssertionError("the request never reached the project's row lock")


@pytest.mark.parametrize("write", ["delete", "patch", "job"])
def test_a_write_that_meets_the_projects_deletion_answers_404(client_for, write):
    owner = make_user("dora")
    project = make_project(owner)
    make_image(project, seed=1)
    client = client_for(owner)
    client.raise_request_exception = False  # the answer a user gets, a 500 included
    base = f"/api/projects/{project.pk}/"
    send = {
        "delete": lambda: client.delete(f"{base}?version={project.version}"),
        "patch": lambda: client.patch(base, {"version": project.version, "description": "x"}, format="json"),
        "job": lambda: client.post(f"{base}jobs/", {"images": "all"}, format="json"),
    }[write]
    answers = []

    def run():
        try:
            answers.append(send())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    # The project row is held here while the request passes its lookup and waits on the lock; the
    # delete commits; the request then finds nothing, as it does when two deletes meet.
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)
        thread.start()
        _waiting_on_a_lock(1)
        Project.objects.filter(pk=project.pk).delete()
    thread.join(30)
    (answer,) = answers
    assert answer.status_code == 404, answer.content[:300]
    assert answer["Content-Type"] == "application/json"
    assert "deleted" in answer.json()["detail"]
