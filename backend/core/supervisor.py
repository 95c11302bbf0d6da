"""Keep a few child processes running: restart a crashed one with backoff, stop them all on request.

Used by `manage.py serve`. Free of Django so it can be read (and reused) on its own.

Each child leads its own process group, so a celery worker and its pool processes are signalled and
cleaned up as one, and a Ctrl-C in the terminal reaches only the supervisor, which then stops the
children in order. On Linux each child also gets SIGTERM if the supervisor itself dies (kill -9),
so a killed `serve` leaves no workers behind.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("razmetka.supervisor")

_PR_SET_PDEATHSIG = 1


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _die_with_parent(parent_pid: int):
    """preexec_fn: ask the kernel for SIGTERM when the supervisor dies, then close the race."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not after fork
    except (OSError, AttributeError):
        return None  # not Linux: the supervisor's own shutdown still stops the children

    def setup():
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


@dataclass
class Service:
    """Something the supervisor did not start but keeps alive (the embedded PostgreSQL and Redis):
    `alive()` is polled every `check_interval` seconds and `revive()` called while it is False."""

    name: str
    alive: Callable[[], bool]
    revive: Callable[[], object]
    down_since: float | None = None
    revivals: int = 0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = 0.0  # the next restart's backoff; 0 until the first crash
    restart_at: float | None = None
    restarts: int = 0
    pids: list[int] = field(default_factory=list)


class Supervisor:
    """Start children, restart each one that exits (1 s, 2 s, 4 s ... up to `max_delay`; back to
    `min_delay` once it has stayed up `stable_after` seconds), and stop all on `stop()`."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        cwd=None,
        env: dict | None = None,
        min_delay: float = 1.0,
        max_delay: float = 30.0,
        stable_after: float = 60.0,
        stop_timeout: float = 20.0,
        services: list[Service] | None = None,
        check_interval: float = 1.0,
        pass_fds: tuple[int, ...] = (),
    ):
        self.children = [Child(name, list(argv)) for name, argv in commands.items()]
        self.pass_fds = tuple(pass_fds)  # e.g. the web port every web process accepts on
        self.services = list(services or [])
        self.check_interval = check_interval
        self._next_check = 0.0
        self.cwd = cwd
        self.env = env
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def request_stop(self, *_args) -> None:
        """Signal-handler safe: only sets a flag that the loop in `run` reads."""
        self._stopping = True

    def run(self, poll_interval: float = 0.2) -> None:
        """Supervise until `request_stop()` (e.g. from SIGINT/SIGTERM), then stop every child."""
        try:
            while not self._stopping:
                self.tick()
                time.sleep(poll_interval)
        finally:
            self.stop()

    def tick(self, now: float | None = None) -> None:
        """One supervision step: notice exits, schedule restarts, start the ones that are due."""
        now = time.monotonic() if now is None else now
        if self.services and now >= self._next_check:
            self._check_services()
            self._next_check = time.monotonic() + self.check_interval
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                self._on_exit(child, now)
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)

    def stop(self) -> None:
        """SIGTERM every child's main process (celery then does a warm shutdown of its pool), wait
        up to `stop_timeout`, SIGKILL what is left, and finally sweep each child's process group."""
        self._stopping = True
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            logger.info("stopping %s (pid %s)", child.name, child.proc.pid)
            _signal(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s: killing it", child.name, self.stop_timeout)
                _killpg(child.proc.pid)
                child.proc.wait()
        for child in self.children:
            if child.proc is not None:
                _killpg(child.proc.pid)  # pool processes a dead main process left behind

    # -- internals -------------------------------------------------------------------------------

    def _check_services(self) -> None:
        for service in self.services:
            try:
                if service.alive():
                    if service.down_since is not None:
                        logger.warning("%s is back after %.1f s", service.name, time.monotonic() - service.down_since)
                        service.down_since = None
                    continue
            except Exception:  # a check that cannot even run counts as down
                pass
            if service.down_since is None:
                service.down_since = time.monotonic()
                logger.warning("%s is down; restarting it", service.name)
            try:
                service.revive()
                service.revivals += 1
            except Exception as exc:  # e.g. the killed server's processes still hold its files
                logger.warning("could not restart %s yet (%s: %s); trying again", service.name, type(exc).__name__, exc)

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            child.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=self.pass_fds,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.pids.append(child.proc.pid)
        logger.info("started %s (pid %s)", child.name, child.proc.pid)

    def _on_exit(self, child: Child, now: float) -> None:
        proc = child.proc
        # The main process is gone; its pool processes would otherwise linger and hold resources.
        _killpg(proc.pid)
        uptime = now - child.started_at
        if child.delay == 0 or uptime >= self.stable_after:
            child.delay = self.min_delay
        else:
            child.delay = min(child.delay * 2, self.max_delay)
        child.proc = None
        child.restart_at = now + child.delay
        logger.warning(
            "%s (pid %s) exited with %s after %.1f s; restarting in %.0f s",
            child.name, proc.pid, describe_exit(proc.returncode), uptime, child.delay,
        )


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
