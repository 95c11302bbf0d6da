"""A few PostgreSQL connections per web process, kept open, for the hot read routes.

Django under ASGI runs each request's sync code in a thread of its own, so every request opens a
new database connection (20-30 ms here: PostgreSQL forks a backend that starts with cold caches).
The hot routes (backend/annotations/hot_routes.py) query through these instead, from the event
loop, with raw SQL. A connection that fails is dropped; the caller then hands the request to
Django, which answers as it always does (503 when the database is down).
"""
from __future__ import annotations

import asyncio
import contextlib

import psycopg

# Per web process. A write holds its connection through COMMIT's WAL flush (tens of ms on a busy
# disk), so a handful would cap the route at a few hundred requests/s whatever the CPU does.
POOL_SIZE = 10
APPLICATION_NAME = "razmetka-hot-routes"
PREPARE_AFTER = 2  # executions of one statement on a connection before it is prepared


class AsyncPool:
    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._idle: list[psycopg.AsyncConnection] = []
        self._slots: asyncio.Semaphore | None = None  # FIFO-fair: no waiter starves behind newcomers
        self._loop = None

    def _params(self) -> dict:
        from django.db import connections

        params = dict(connections["default"].get_connection_params())
        for key in ("cursor_factory", "context"):
            params.pop(key, None)
        # Django sets UTC on its own connections; datetimes must render the same way here.
        params["options"] = (params.get("options", "") + " -c TimeZone=UTC").strip()
        params.setdefault("application_name", APPLICATION_NAME)  # tells them apart in pg_stat_activity
        # Django's params turn psycopg's server-side prepared statements off (None); these few
        # statements run thousands of times per connection, and re-parsing and re-planning each
        # cost PostgreSQL ~3x the CPU of running it prepared (image detail: 1.16 -> 0.39 ms).
        params["prepare_threshold"] = PREPARE_AFTER
        return params

    def discard(self) -> None:
        """Close the idle connections without their event loop (which may be gone)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()

    @contextlib.asynccontextmanager
    async def connection(self):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop (tests): start afresh
            self.discard()
            self._loop, self._slots = loop, asyncio.Semaphore(self.size)
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None:
                    conn = await psycopg.AsyncConnection.connect(autocommit=True, **self._params())
                yield conn
            finally:
                # Kept after a refusal too (the caller raising); dropped if broken or mid-transaction.
                ok = conn is not None and not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                if ok:
                    self._idle.append(conn)
                elif conn is not None and not conn.closed:
                    await conn.close()


pool = AsyncPool()
