"""`manage.py serve` keeps its children running: a crashed one is restarted, the others are left alone,
and Ctrl-C still stops everything. Real processes throughout: the supervisor's own children in the
first tests, then the real `serve` with uvicorn and a Celery worker on the test database."""
from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backend.core.supervisor import Supervisor
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        try:
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        for kid in map(int, kids):
            found.add(kid)
            todo.append(kid)
    return found


# -- the supervisor on its own --------------------------------------------------------------------


def test_crashing_child_is_restarted_with_doubling_backoff_reset_after_a_stable_run(caplog):
    caplog.set_level(logging.INFO, logger="razmetka.supervisor")
    sup = Supervisor({"crasher": [sys.executable, "-c", "raise SystemExit(3)"]}, min_delay=1, max_delay=4, stable_after=60)
    sup.start()
    child = sup.children[0]
    try:
        delays = []
        for _ in range(4):
            child.proc.wait(timeout=30)
            sup.tick()
            delays.append(child.delay)
            assert child.proc is None  # not before its delay is up
            sup.tick(now=child.restart_at)
        assert delays == [1, 2, 4, 4]
        assert len(set(child.pids)) == 5 and child.restarts == 4

        child.proc.wait(timeout=30)
        child.started_at -= 61  # as if this run had stayed up a minute
        sup.tick()
        assert child.delay == 1
    finally:
        sup.stop()
    assert "crasher (pid" in caplog.text
    assert "exited with exit code 3" in caplog.text
    assert "restarting in 4 s" in caplog.text


def test_stop_kills_a_child_that_ignores_sigterm_and_its_own_children(tmp_path):
    marker = tmp_path / "grandchild.pid"
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "grandchild = subprocess.Popen(['sleep', '120'])\n"
        f"open({str(marker)!r}, 'w').write(str(grandchild.pid))\n"
        "time.sleep(120)\n"
    )
    sup = Supervisor({"stubborn": [sys.executable, "-c", script]}, stop_timeout=1)
    sup.start()
    grandchild = int(wait_for(lambda: marker.exists() and marker.read_text(), 30, "the grandchild"))
    child = sup.children[0].proc

    started = time.monotonic()
    sup.stop()
    assert time.monotonic() - started >= 1
    assert child.returncode == -signal.SIGKILL
    wait_for(lambda: not alive(grandchild), 5, "the grandchild to be killed with its group")


def test_children_get_sigterm_when_the_supervisor_is_killed():
    code = (
        "import sys\n"
        "from backend.core.supervisor import Supervisor\n"
        "sup = Supervisor({'sleeper': ['sleep', '120']})\n"
        "sup.start()\n"
        "print(sup.children[0].proc.pid, flush=True)\n"
        "sup.run()\n"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        sleeper = int(supervisor.stdout.readline())
        assert alive(sleeper)
        supervisor.kill()
        supervisor.wait(timeout=10)
        wait_for(lambda: not alive(sleeper), 5, "the orphaned child to stop")
    finally:
        supervisor.kill()
        supervisor.stdout.close()


# -- the real `manage.py serve` -------------------------------------------------------------------


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class Serve:
    """`manage.py serve` in a subprocess, its log in a file the test reads."""

    STARTED = re.compile(r"started ([\w-]+) \(pid (\d+)\)")

    def __init__(self, tmp_path: Path, args: list[str], env: dict):
        self.log_path = tmp_path / "serve.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", *args], cwd=ROOT, env=env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, name: str) -> list[int]:
        return [int(pid) for who, pid in self.STARTED.findall(self.text()) if who == name]

    def pid(self, name: str, count: int = 1, timeout: float = 60) -> int:
        """The pid of the `count`-th start of child `name`."""
        pids = wait_for(
            lambda: (len(self.pids(name)) >= count and self.pids(name)) or self._check_running(),
            timeout, f"start #{count} of {name}",
        )
        return pids[count - 1]

    def _check_running(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.text()[-4000:]}")
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def celery_node_answers(node: str) -> bool:
    from backend.config.celery import app

    return bool(app.control.ping(destination=[node], timeout=1))


def cpu_queue_answers() -> bool:
    from django.conf import settings

    from backend.core.tasks import ping

    return ping.apply_async(args=["sup"], queue=settings.QUEUE_CPU).get(timeout=30) == "pong:sup"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_shared_web_socket_hands_tcp_nodelay_to_every_connection():
    """uvicorn takes the inherited socket for a unix one and never sets TCP_NODELAY itself: a small
    answer written as headers + body then waited ~40 ms for the client's delayed ACK (a single
    reviewer's write took 48 ms instead of 5). The listener serve binds carries the option."""
    from backend.core.management.commands.serve import listen

    server = listen("127.0.0.1", free_port())
    try:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        accepted.close()
        client.close()
    finally:
        server.close()


def test_serve_restarts_crashed_children_and_stops_cleanly_on_ctrl_c(tmp_path):
    from django.conf import settings
    from django.db import connection

    port = free_port()
    url = f"http://127.0.0.1:{port}/api/health/"
    node = f"{settings.QUEUE_PREFIX}cpu@{socket.gethostname()}"
    # The test database (already migrated by the suite): serve's migrate is a no-op and the admin
    # user it creates is flushed with the rest after this test.
    env = {**os.environ, "RAZMETKA_DB_NAME": connection.settings_dict["NAME"], "RAZMETKA_ADMIN_PASSWORD": "x" * 12}
    serve = Serve(tmp_path, ["--port", str(port), "--workers", "cpu", "--web-processes", "2"], env)
    try:
        web, cpu = serve.pid("web-1", timeout=120), serve.pid("cpu", timeout=120)
        other_web = serve.pid("web-2", timeout=120)
        wait_for(lambda: http_ok(url) or serve._check_running(), 120, "the web server", interval=0.3)
        wait_for(lambda: celery_node_answers(node), 120, f"a ping from {node}", interval=0)
        assert serve.pids("gpu") == []  # --workers cpu: no torch import to wait for

        # One web process dies: the other keeps answering on the shared port while it is restarted
        # within 10 s, and the worker was never touched.
        os.kill(web, signal.SIGKILL)
        killed = time.monotonic()
        assert all(http_ok(url) for _ in range(5)), "the second web process answers at once"
        new_web = serve.pid("web-1", count=2, timeout=10)
        wait_for(lambda: http_ok(url), 10 - (time.monotonic() - killed), "the web server after the crash", interval=0.2)
        assert new_web != web
        assert f"web-1 (pid {web}) exited with signal SIGKILL" in serve.text()
        assert serve.pids("web-2") == [other_web] and alive(other_web)
        assert serve.pids("cpu") == [cpu] and alive(cpu)

        # The cpu worker's main process dies: a new one serves the queue; its old pool is gone.
        old_pool = descendants(cpu)
        assert old_pool, "the prefork pool processes of the cpu worker"
        os.kill(cpu, signal.SIGKILL)
        new_cpu = serve.pid("cpu", count=2, timeout=30)
        assert new_cpu != cpu
        assert f"cpu (pid {cpu}) exited with signal SIGKILL" in serve.text()
        wait_for(lambda: not any(alive(pid) for pid in old_pool), 10, "the dead worker's pool to be cleaned up")
        wait_for(lambda: celery_node_answers(node), 120, f"a ping from the restarted {node}", interval=0)
        assert cpu_queue_answers()
        assert serve.pids("web-1") == [web, new_web] and alive(new_web)

        # Ctrl-C: everything stops and serve exits 0.
        children = {new_web, new_cpu} | descendants(serve.proc.pid)
        serve.proc.send_signal(signal.SIGINT)
        assert serve.proc.wait(timeout=60) == 0, serve.text()[-4000:]
        wait_for(lambda: not any(alive(pid) for pid in children), 10, "every child to exit")
        assert not http_ok(url)
    finally:
        serve.close()
