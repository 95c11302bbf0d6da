"""Logging filters (settings.LOGGING names them; no Django imports here)."""
from __future__ import annotations

import logging


class WithoutTraceback(logging.Filter):
    """The record's message without its traceback: for what anyone can cause without an account
    (a request naming another Host), where ~30 lines a request let a script fill the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True
