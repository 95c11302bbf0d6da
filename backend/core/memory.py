"""Handing freed memory back to the operating system.

glibc keeps much of what a large piece of work freed in its arenas: a process's RSS stays at its
peak after the work is over (a Mask R-CNN training left its gpu worker at 6.1 GB of a 7.5 GB peak
while it ran small jobs, black-box round 17)."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_trim = getattr(_libc, "malloc_trim", None)


def give_back(*, collect: bool = False) -> None:
    """Return the free heap pages to the system (`collect`: after a garbage collection, so cycles
    that held large buffers are freed first). A no-op where libc has no malloc_trim."""
    if collect:
        gc.collect()
    if _trim is not None:
        _trim(0)
