"""Live events leave through one background thread per process, in commit order, and a write
does not wait for them; a failing send never stops the events after it."""
import threading

import pytest
from django.db import transaction

from backend.core import events
from backend.realtime import backlog

pytestmark = pytest.mark.django_db(transaction=True)


def _emit(project_id: int, n: int) -> None:
    with transaction.atomic():
        events.emit(project_id, "job.progress", job={"id": 7, "processed": n, "total": 100})


def test_events_are_numbered_and_kept_in_commit_order():
    project_id = 910_001
    start = backlog.current(project_id)
    for n in range(100):
        _emit(project_id, n)
    assert events.publisher.flush()
    kept = backlog.since(project_id, start)
    processed = [e["job"]["processed"] for e in kept.events]
    assert processed == list(range(100))
    assert [e["seq"] for e in kept.events] == list(range(start + 1, start + 101))


def test_the_request_thread_does_not_send(monkeypatch):
    """The send happens on the publisher's thread, not on the thread that committed."""
    seen = []
    real = backlog.append_many

    def spy(project_id, payloads):
        seen.append(threading.current_thread().name)
        return real(project_id, payloads)

    monkeypatch.setattr(backlog, "append_many", spy)
    _emit(910_002, 1)
    assert events.publisher.flush()
    assert seen == ["live-events"]


def test_a_failing_send_does_not_stop_the_next_ones(monkeypatch):
    project_id = 910_003
    real = backlog.append_many
    calls = {"n": 0}

    def flaky(pid, payloads):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("redis went away")
        return real(pid, payloads)

    monkeypatch.setattr(backlog, "append_many", flaky)
    start = backlog.current(project_id)
    _emit(project_id, 1)
    assert events.publisher.flush()  # its own send, which fails
    _emit(project_id, 2)
    assert events.publisher.flush()
    assert [e["job"]["processed"] for e in backlog.since(project_id, start).events] == [2]
