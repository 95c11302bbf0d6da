"""Live events leave through one background thread per process, in commit order, and a write
does not wait for them; a failing send never stops the events after it."""
import asyncio
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


def test_the_first_event_after_redis_dropped_its_connections_arrives(monkeypatch, settings):
    """A Redis restart drops every pooled connection; the publisher's first send on its stale one
    failed and that event never reached an open page (the backlog had it, the socket did not)."""
    from asgiref.sync import async_to_sync
    from channels.layers import channel_layers
    from channels_redis.core import RedisChannelLayer
    from redis.exceptions import ConnectionError as RedisConnectionError

    from backend.core import redis_client

    name = "razmetka-test-dropped"
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    layer = RedisChannelLayer(hosts=[{**config["hosts"][0], "client_name": name}], prefix=config["prefix"])
    monkeypatch.setitem(channel_layers.backends, "default", layer)
    project_id = 910_004
    group = events.project_group(project_id)
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    def received():
        for _ in range(2):  # this receive's own pooled connection was dropped too: its first try fails
            try:
                return async_to_sync(receive)()["payload"]["job"]["processed"]
            except RedisConnectionError:
                continue
            except TimeoutError:
                break
        raise AssertionError("the event never arrived")

    _emit(project_id, 1)
    assert events.publisher.flush()
    assert received() == 1
    redis = redis_client.shared()
    dropped = [int(c["id"]) for c in redis.client_list() if c.get("name") == name]
    assert dropped  # the publisher's and this test's connections
    for client_id in dropped:
        redis.client_kill_filter(_id=client_id)
    _emit(project_id, 2)
    assert events.publisher.flush()
    assert received() == 2
