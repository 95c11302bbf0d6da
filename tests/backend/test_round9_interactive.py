"""Clicks that wait for the interactive worker (box-segment, click-refine) must not starve the rest
of the web process. Each waiting click kept its pooled database connection (8 per process) for up
to 60 s: ~16 slow clicks and every other request, /api/health/ included, answered 503 "the
database or the task queue is restarting" (black-box round 9, finding 1)."""
from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from rest_framework.authtoken.models import Token

from tests.live_server import start_web, stop

from .test_segment_proposal import project_with_image


@pytest.mark.django_db(transaction=True)
def test_waiting_clicks_hold_no_database_connection_and_are_bounded():
    from django.db import connection

    owner, project, image, _ = project_with_image(gallery=False)
    token = Token.objects.create(user=owner).key
    # Queues no worker listens on: every click waits its whole timeout, as with a hung worker.
    prefix = f"r9click{os.getpid()}-{time.monotonic_ns()}-"
    proc, url = start_web(connection.settings_dict["NAME"], log_name="round9-interactive.log", extra_env={
        "RAZMETKA_QUEUE_PREFIX": prefix,
        "RAZMETKA_DB_POOL_SIZE": "2",  # fewer connections than waiting clicks
        "RAZMETKA_INTERACTIVE_MAX_WAITING": "4",
        "RAZMETKA_INTERACTIVE_TIMEOUT_S": "8",
    })
    headers = {"Authorization": f"Token {token}"}
    base = f"/api/projects/{project.pk}/images/{image.pk}"
    clicks = [("segment/", {"box": [4, 4, 40, 36]}), ("refine/", {"points": [[20, 20]], "labels": [1]})] * 3
    answers: list[tuple[int, str, float]] = []

    def click(path, body):
        started = time.monotonic()
        with httpx.Client(base_url=url, headers=headers, timeout=90) as client:
            response = client.post(f"{base}/{path}", json=body)
        answers.append((response.status_code, response.json().get("code", ""), time.monotonic() - started))

    threads = [threading.Thread(target=click, args=c) for c in clicks]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)  # every click is in: four waiting, two refused
        with httpx.Client(base_url=url, headers=headers, timeout=30) as other:
            for path in ["/api/health/", f"/api/projects/{project.pk}/images/"] * 3:
                started = time.monotonic()
                response = other.get(path)
                # Before: the pool's 3 s timeout, then 503 ("restarting" from the API, "db": "error" from health).
                assert response.status_code == 200, (path, response.status_code, response.text[:200])
                assert time.monotonic() - started < 2, path
        for thread in threads:
            thread.join(timeout=60)
    finally:
        stop(proc)
    full = [a for a in answers if a[1] == "segment_queue_full"]
    waited = [a for a in answers if a[1] == "segment_unavailable"]
    assert len(full) == 2 and len(waited) == 4, answers
    assert all(status == 503 and elapsed < 2 for status, _, elapsed in full), "refused at once, not after a wait"
    assert all(status == 503 and elapsed >= 7 for status, _, elapsed in waited), "the worker's timeout, as before"


@pytest.mark.parametrize("size, available, code", [(8, 0, "busy"), (2, 0, "unavailable"), (8, 3, "unavailable")])
def test_a_pool_timeout_with_every_connection_lent_says_busy_not_restarting(monkeypatch, size, available, code):
    """psycopg_pool's PoolTimeout is also what a down PostgreSQL gives (the pool cannot grow); only a
    pool at its size with nothing free is a busy server."""
    from django import db
    from psycopg_pool import PoolTimeout

    from backend.core.errors import exception_handler

    class Pool:
        def get_stats(self):
            return {"pool_min": 1, "pool_max": 8, "pool_size": size, "pool_available": available}

    monkeypatch.setattr(type(db.connections["default"]), "pool", property(lambda self: Pool()))
    exc = db.OperationalError("couldn't get a connection after 3.00 sec")
    exc.__cause__ = PoolTimeout("couldn't get a connection after 3.00 sec")
    response = exception_handler(exc, {})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.data["code"] == code
    assert ("restarting" in response.data["detail"]) == (code == "unavailable")
