"""A frozen embedded Redis (SIGSTOP: a paused VM, a swap storm) is waited for, not doubled: serve's
watchdog started a second redis-server on the same socket and files, both wrote the same AOF once
the first thawed, and `embedded stop` stopped only the pid file's one (round 11)."""
from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from backend.config import embedded


@pytest.fixture
def own_redis(monkeypatch):
    # A short path: a unix socket's path is limited to ~107 bytes.
    with tempfile.TemporaryDirectory(prefix="rz-", dir="/tmp") as var:
        monkeypatch.setattr(embedded, "VAR_DIR", Path(var))
        embedded.ensure_redis()
        try:
            yield
        finally:
            for pid in embedded._redis_pids():
                os.kill(pid, signal.SIGCONT)
            embedded.stop_all()
            deadline = time.monotonic() + 10
            while embedded._redis_pids() and time.monotonic() < deadline:
                time.sleep(0.1)


def test_a_frozen_redis_is_waited_for_and_stop_finds_every_server(own_redis):
    (pid,) = embedded._redis_pids()
    os.kill(pid, signal.SIGSTOP)
    try:
        assert not embedded.redis_alive()
        with pytest.raises(RuntimeError, match="not answering"):
            embedded.ensure_redis()
        assert embedded._redis_pids() == [pid]  # no second server on the same files
    finally:
        os.kill(pid, signal.SIGCONT)
    assert embedded.ensure_redis().startswith("unix://") and embedded._redis_pids() == [pid]
    embedded.stop_all()
    deadline = time.monotonic() + 10
    while embedded._redis_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert embedded._redis_pids() == []
