"""A real web server process (uvicorn, as `manage.py serve` runs it) on pytest-django's test database, for tests that must see the app
from outside: a crash inside a request shows up as a dead process, not a failed assertion."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(db_name: str, *, log_name: str = "live-server.log", extra_env: dict | None = None):
    """Start the web server on a free port against `db_name`; return (process, base URL) once it answers."""
    from backend.core.management.commands.serve import uvicorn_command

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env["RAZMETKA_DB_NAME"] = db_name
    env.update(extra_env or {})
    (ROOT / "var").mkdir(exist_ok=True)
    log = open(ROOT / "var" / log_name, "ab")
    proc = subprocess.Popen(
        uvicorn_command(sys.executable, host="127.0.0.1", port=port),
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the web server exited with {proc.returncode}; see var/{log_name}")
        try:
            urllib.request.urlopen(f"{url}/api/auth/me/", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # 401: up
        except OSError:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"the web server did not start within 60 s; see var/{log_name}")
            time.sleep(0.3)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
