"""Start and stop real Celery worker processes for tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def start_worker(*, queues: list[str] | None = None, extra_env: dict | None = None, name: str = "test") -> subprocess.Popen:
    from backend.config.celery import app

    queues = queues or [settings.QUEUE_CPU, settings.QUEUE_GPU, settings.QUEUE_INTERACTIVE]
    env = {**os.environ, "RAZMETKA_DB_NAME": connection.settings_dict["NAME"], **(extra_env or {})}
    node = f"{name}-{os.getpid()}-{time.monotonic_ns()}@localhost"
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    log = open(settings.VAR_DIR / f"worker-{name}.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backend.config", "worker", "-Q", ",".join(queues),
         "--pool", "solo", "-c", "1", "-n", node, "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}; see var/worker-{name}.log")
        replies = app.control.ping(destination=[node], timeout=0.5) or []
        if replies:
            proc.node = node
            return proc
    stop_worker(proc)
    raise RuntimeError(f"worker did not start within 90 s; see var/worker-{name}.log")


def stop_worker(proc: subprocess.Popen, *, hard: bool = False) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
