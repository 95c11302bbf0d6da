"""The web server closes connections whose request head does not arrive, or whose body stalls:
uvicorn held them for ever, and ~40,000 half-sent heads (no account needed) used up both web
processes' file descriptors until every client got "connection reset"."""
from __future__ import annotations

import http.client
import socket
import time

import pytest
from django.db import connection

from tests.live_server import start_web, stop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server():
    proc, url = start_web(connection.settings_dict["NAME"], log_name="timeouts-server.log", extra_env={
        "RAZMETKA_HTTP_HEAD_TIMEOUT_S": "1", "RAZMETKA_HTTP_BODY_IDLE_TIMEOUT_S": "1.5",
        "RAZMETKA_HTTP_BODY_GRACE_S": "2", "RAZMETKA_HTTP_BODY_MIN_RATE": "10"})
    try:
        yield url
    finally:
        stop(proc)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and what it sent before."""
    start, got = time.monotonic(), b""
    while chunk := sock.recv(4096):
        got += chunk
    return time.monotonic() - start, got


@pytest.mark.parametrize("sent", [b"", b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: "])
def test_a_request_head_that_never_completes_is_answered_408_and_closed(server, sent):
    with _connect(server) as sock:
        sock.sendall(sent)
        waited, got = _closed_after(sock)
    assert waited < 5, waited
    assert got.startswith(b"HTTP/1.1 408 "), got


def test_a_body_that_stalls_is_dropped_but_one_that_moves_slowly_is_served(server):
    with _connect(server) as stalled:
        stalled.sendall(b"POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"user")
        waited, _ = _closed_after(stalled)
    assert waited < 6, waited
    body = b'{"username": "nobody", "password": "' + b"wrong-password-" * 10 + b'"}'  # ~190 bytes in 3 s
    with _connect(server) as slow:
        slow.sendall(b"POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        third = len(body) // 3
        for part in (body[:third], body[third:2 * third], body[2 * third:]):  # 3 s, never 1.5 s without a byte
            time.sleep(1.0)
            slow.sendall(part)
        _, answer = _closed_after(slow)
    assert answer.startswith(b"HTTP/1.1 400 ") or answer.startswith(b"HTTP/1.1 401 "), answer[:200]


def test_a_kept_alive_connection_may_idle_between_requests_longer_than_the_head_timeout(server):
    """The head timer runs from a request's first byte, not while the connection idles (uvicorn's
    keep-alive timeout, 5 s, covers that)."""
    host, port = server.removeprefix("http://").split(":")
    kept = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(2):
            kept.request("GET", "/api/health/")
            answer = kept.getresponse()
            answer.read()
            assert answer.status == 200
            time.sleep(2)  # past the 1 s head timeout, within the keep-alive
    finally:
        kept.close()


def test_a_body_that_trickles_is_dropped_after_its_grace(server):
    """A byte every few seconds is never a stall, and held the socket for ever without an account
    (round 12): below the minimum rate once the grace has passed, the connection goes."""
    with _connect(server) as trickle:
        trickle.sendall(b"POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000\r\n\r\n")
        start, closed = time.monotonic(), False
        while time.monotonic() - start < 10:
            try:
                trickle.sendall(b" ")
            except OSError:  # reset by the server
                closed = True
                break
            trickle.settimeout(0.3)
            try:
                if trickle.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed and time.monotonic() - start < 6, time.monotonic() - start

