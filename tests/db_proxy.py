"""A TCP proxy in front of the test PostgreSQL that a test can cut: a worker process that reaches
the database through it sees an outage (connections closed at once, as while PostgreSQL
restarts) for as long as the test wants, while the test process itself keeps its own direct
connection."""
from __future__ import annotations

import socket
import threading
from urllib.parse import quote

from .live_server import free_port


def _target(settings_dict: dict) -> tuple[int, object]:
    """(address family, address) of the server behind Django's connection settings: the embedded
    server listens on a Unix socket in its HOST folder, a DATABASE_URL server on TCP."""
    host, port = settings_dict["HOST"] or "/tmp", int(settings_dict["PORT"] or 5432)
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (host, port)


class DbProxy:
    """Forwards 127.0.0.1:<port> to the database; `refuse()` cuts every open connection and
    closes each new one as soon as it is accepted, `open()` forwards again. `refused` counts the
    connections turned away."""

    def __init__(self, settings_dict: dict):
        self._settings = settings_dict
        self._family, self._address = _target(settings_dict)
        self.port = free_port()
        self.refused = 0
        self._refusing = False
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)  # lets close() end the accept loop
        self._thread = threading.Thread(target=self._accept_loop, name="db-proxy", daemon=True)
        self._thread.start()

    def url(self) -> str:
        """A DATABASE_URL for a subprocess: the same server, user and database, through the proxy."""
        s = self._settings
        return f"postgresql://{quote(s['USER'] or '', safe='')}:{quote(s['PASSWORD'] or '', safe='')}@127.0.0.1:{self.port}/{s['NAME']}"

    def refuse(self) -> None:
        with self._lock:
            self._refusing = True
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)

    def open(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        self.refuse()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
                if refusing:
                    self.refused += 1
            if refusing:
                _close(client)
                continue
            try:
                upstream = socket.socket(self._family, socket.SOCK_STREAM)
                upstream.connect(self._address)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._live.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._live.difference_update((src, dst))
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # the peer sees the end at once, even with a pump blocked in recv
    except OSError:
        pass
    sock.close()


def cut_own_connection() -> None:
    """What a PostgreSQL restart does to this process's Django connection, in-process: its backend
    is terminated, so the next statement on it raises OperationalError (call connection.close()
    before using the database again)."""
    from django.db import DEFAULT_DB_ALIAS, connection, connections

    pid = connection.connection.info.backend_pid
    side = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with side.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        side.close()
