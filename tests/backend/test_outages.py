"""A backing server that dies: the API answers 503 with Retry-After (never a 500) while it is
down, and `manage.py serve` starts the embedded PostgreSQL and Redis again."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from rest_framework.authtoken.models import Token

from tests.backend.factories import make_project, make_user
from tests.backend.test_supervision import Serve, free_port, http_ok, wait_for
from tests.live_server import ROOT, start_web, stop


@pytest.mark.django_db(transaction=True)
def test_a_database_that_is_down_answers_503_with_retry_after():
    user = make_user("owner")
    project = make_project(user)
    token = Token.objects.create(user=user)
    # Nothing listens on port 1: every query fails the way it does while PostgreSQL restarts.
    proc, url = start_web("unused", log_name="outage-server.log", extra_env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/razmetka"})
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {token.key}"}, timeout=30) as client:
            for method, path, body in [
                ("GET", "/api/projects/", None),
                ("POST", f"/api/projects/{project.pk}/annotations/", {"image": 1, "polygons": [[0, 0, 5, 0, 5, 5]]}),
            ]:
                started = time.monotonic()
                response = client.request(method, path, json=body)
                assert response.status_code == 503, response.text[:300]
                # The web processes' connection pool gives up quickly, not after a long wait (it waited 20 s).
                assert time.monotonic() - started < 10
                assert response.headers["Retry-After"] == "5"
                assert "restarting" in response.json()["detail"]
            assert proc.poll() is None
    finally:
        stop(proc)


@pytest.mark.django_db(transaction=True)
def test_pooled_connections_that_postgres_dropped_are_replaced_not_answered_with_503():
    """A PostgreSQL restart (or an idle timeout) kills the web processes' pooled connections; the
    pool checks each one when it is handed out, so the next requests succeed instead of failing
    once per stale connection."""
    from django.db import connection

    user = make_user("pooled")
    make_project(user)
    token = Token.objects.create(user=user)
    proc, url = start_web(connection.settings_dict["NAME"], log_name="pool-server.log")
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {token.key}"}, timeout=30) as client:
            for _ in range(4):
                assert client.get("/api/projects/").status_code == 200
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                assert cursor.fetchone()[0] >= 1
            time.sleep(0.5)
            statuses = [client.get("/api/projects/").status_code for _ in range(6)]
            assert statuses == [200] * 6, statuses
    finally:
        stop(proc)


def test_serve_restarts_the_embedded_postgres_and_redis_when_they_die(tmp_path):
    # Not under tmp_path: as root, pgserver runs PostgreSQL as its own user, who cannot enter
    # pytest's 0700 temp folders; the checkout's var/ is where the embedded servers live anyway.
    (ROOT / "var").mkdir(exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="outage-", dir=ROOT / "var")) / "var"
    var.parent.chmod(0o755)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/health/"
    env = {k: v for k, v in os.environ.items() if k not in {"XDG_RUNTIME_DIR", "RAZMETKA_DB_NAME", "DATABASE_URL", "REDIS_URL"}}
    env.update({"RAZMETKA_VAR_DIR": str(var), "RAZMETKA_ADMIN_PASSWORD": "x" * 12})
    serve = Serve(tmp_path, ["--port", str(port), "--workers", ""], env)
    try:
        serve.pid("web-1", timeout=180)
        wait_for(lambda: http_ok(url) or serve._check_running(), 120, "the app on fresh embedded servers", interval=0.3)
        postmaster = int((var / "pg" / "postmaster.pid").read_text().split()[0])
        redis = int((var / "redis" / "redis.pid").read_text().strip())
        os.kill(postmaster, signal.SIGKILL)
        os.kill(redis, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: not http_ok(url), 10, "the health check to notice")
        wait_for(lambda: http_ok(url) or serve._check_running(), 60, "PostgreSQL and Redis to come back", interval=0.3)
        print(f"back after {time.monotonic() - killed:.1f} s")
        wait_for(lambda: all(f"{name} (embedded) is back" in serve.text() for name in ("postgres", "redis")), 10, "the log")
        log = serve.text()
        assert "postgres (embedded) is down; restarting it" in log and "redis (embedded) is down; restarting it" in log
        assert serve.pids("web-1") == serve.pids("web-1")[:1] and serve.pids("web-2") == serve.pids("web-2")[:1]  # the web processes rode it out
        serve.proc.send_signal(signal.SIGINT)
        assert serve.proc.wait(timeout=60) == 0
    finally:
        serve.close()
        for pid_file, sig in ((var / "redis" / "redis.pid", signal.SIGTERM), (var / "pg" / "postmaster.pid", signal.SIGINT)):
            try:
                os.kill(int(pid_file.read_text().split()[0]), sig)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
        time.sleep(1)  # PostgreSQL's fast shutdown, before its files go
        shutil.rmtree(var.parent, ignore_errors=True)
