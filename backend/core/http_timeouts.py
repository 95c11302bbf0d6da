"""uvicorn's httptools protocol with the read timeouts it lacks (no Django here: uvicorn loads it).

uvicorn times out only an idle keep-alive connection. A client that opens a connection and sends
nothing, or half a request head, or a body a byte a minute, held its socket for ever: ~20,000
such connections (the file limit) per process and every other client got "connection reset"
(a black-box test took the site down so, with no account). A reverse proxy in front does the
same job (docs/deploy.md); these make the app safe without one:

- the request head (line and headers) must arrive within RAZMETKA_HTTP_HEAD_TIMEOUT_S (15 s) of
  the connection or of the previous answer's end; else 408 and the connection is closed;
- a body may not stall for RAZMETKA_HTTP_BODY_IDLE_TIMEOUT_S (60 s) between reads, nor, once
  RAZMETKA_HTTP_BODY_GRACE_S (30 s) have passed, arrive slower than RAZMETKA_HTTP_BODY_MIN_RATE
  (1024 bytes a second on average): a byte every 5 s held a socket for ever (round 12). A slow
  upload that keeps moving is fine; pauses that the app itself causes by not reading do not count.
"""
from __future__ import annotations

import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


HEAD_TIMEOUT_S = _seconds("RAZMETKA_HTTP_HEAD_TIMEOUT_S", 15.0)
BODY_IDLE_TIMEOUT_S = _seconds("RAZMETKA_HTTP_BODY_IDLE_TIMEOUT_S", 60.0)
BODY_GRACE_S = _seconds("RAZMETKA_HTTP_BODY_GRACE_S", 30.0)
BODY_MIN_RATE = _seconds("RAZMETKA_HTTP_BODY_MIN_RATE", 1024.0)  # bytes a second, averaged over the body

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nThe request did not arrive in time.\n"
)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    _head_timer = None
    _body_timer = None
    _body_started = 0.0  # loop time the body began
    _body_bytes = 0
    _body_last = 0.0  # loop time of its last bytes
    _body_checked = 0.0  # loop time of the last _check_body

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc) -> None:
        self._cancel()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # a next request on a kept-alive connection
            self._arm_head()

    def on_headers_complete(self) -> None:
        self._cancel()
        super().on_headers_complete()
        if not self.transport.is_closing() and not self.parser.should_upgrade():
            self._body_started = self._body_last = self._body_checked = self.loop.time()
            self._body_bytes = 0
            self._arm_body()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)
        self._body_last = self.loop.time()

    def on_message_complete(self) -> None:
        self._cancel()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Nothing of the next request yet: uvicorn's keep-alive timeout covers the idle wait; the
        # head timer starts with the next request's first byte (on_message_begin).
        self._cancel()

    def _arm_head(self) -> None:
        self._cancel()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

    def _arm_body(self) -> None:
        self._cancel()
        # Checked a few times a second for short test settings, every second or so in production.
        every = max(0.1, min(1.0, BODY_IDLE_TIMEOUT_S / 4, BODY_GRACE_S / 4))
        self._body_timer = self.loop.call_later(every, self._check_body)

    def _cancel(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head()  # an answer is still being made for an earlier request: not a stall
            return
        self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def _check_body(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        since, self._body_checked = now - self._body_checked, now
        if self.flow.read_paused:
            # The app is not reading (its buffer is full): that time is not the client's to count.
            self._body_started += since
            self._body_last = now
            self._arm_body()
            return
        elapsed = now - self._body_started
        stalled = now - self._body_last >= BODY_IDLE_TIMEOUT_S
        trickling = elapsed >= BODY_GRACE_S and self._body_bytes < BODY_MIN_RATE * elapsed
        if stalled or trickling:
            # The app sees a disconnect (http.disconnect) and gives up on the request.
            self.transport.close()
            return
        self._arm_body()
