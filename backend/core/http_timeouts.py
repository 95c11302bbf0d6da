"""uvicorn's httptools protocol with the read timeouts it lacks (no Django here: uvicorn loads it).

uvicorn times out only an idle keep-alive connection. A client that opens a connection and sends
nothing, or half a request head, or a body a byte a minute, held its socket for ever: ~20,000
such connections (the file limit) per process and every other client got "connection reset"
(a black-box test took the site down so, with no account). A reverse proxy in front does the
same job (docs/deploy.md); these make the app safe without one:

- the request head (line and headers) must arrive within RAZMETKA_HTTP_HEAD_TIMEOUT_S (15 s) of
  the connection or of the previous answer's end; else 408 and the connection is closed;
- a body may not stall for RAZMETKA_HTTP_BODY_IDLE_TIMEOUT_S (60 s) between reads (a slow upload
  that keeps moving is fine; pauses that the app itself causes by not reading do not count).
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

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nThe request did not arrive in time.\n"
)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    _head_timer = None
    _body_timer = None

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
            self._arm_body()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm_body()

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
        self._body_timer = self.loop.call_later(BODY_IDLE_TIMEOUT_S, self._body_timed_out)

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

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app is not reading yet (its buffer is full): not a stall
            self._arm_body()
            return
        # The app sees a disconnect (http.disconnect) and gives up on the request.
        self.transport.close()
