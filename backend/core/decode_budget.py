"""How much memory this process may spend on decoding pictures at once.

A file's size says nothing of its pixels: an all-zero 16-bit RGBA PNG of 10,000 x 10,000 px is
750 KB on the wire and ~760 MB decoded, and eight sent at once took a web process to 3.8 GB. Each
decode reserves what it will cost before it starts; big pictures wait for each other (small ones,
such as a JPEG decoded at 1/8 scale, pass at once), and one that alone would cost more than the
whole budget is refused. Per process: web processes and worker children each hold their own.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from django.conf import settings
from PIL import Image as PILImage

from .memory import give_back

# Bytes per pixel of the full-size copies the thumbnail or a rendition makes of a mode
# (uploads._reducible, display.png_rendition): 16-bit grey becomes 32-bit "I"; a palette with
# transparency becomes RGBA through a second RGBA copy (measured: 100 MP, +765 MB). Counting a
# palette picture at its own 1 byte let 100 MP palette PNGs through five at a time.
_WIDENED = {"P": 7, "PA": 7, "I;16": 4, "I;16B": 4, "I;16L": 4, "I;16N": 4}


# glibc keeps some of what a big decode freed in its thread's arena; a trim after each hands it
# back before the next one starts (8 palette bombs: peak 1,206 MB without, 1,094 MB with).
TRIM_FROM = 64 * 2**20


class DecodeRefused(Exception):
    """Too big to decode here, or the budget stayed taken for too long; the message says which."""


def decode_cost(img: PILImage.Image) -> int:
    """Bytes `img.load()` and one full-size converted copy take, from the header (after any
    `draft()`). Measured peaks of validate_image: 764 MB for a 100 MP RGBA picture (800 counted)."""
    mode = img.mode
    depth = 4 if mode in ("I", "F", "I;32", "F;32") else 2 if "16" in mode else 1
    decoded = len(img.getbands()) * depth
    return img.width * img.height * (decoded + _WIDENED.get(mode, decoded))


class _Budget:
    def __init__(self) -> None:
        self._used = 0
        self._free = threading.Condition()

    @contextmanager
    def reserve(self, cost: int):
        limit, wait = settings.DECODE_MEMORY_BYTES, settings.DECODE_WAIT_SECONDS
        if cost > limit:
            raise DecodeRefused(
                f"Decoding it would take about {cost // 2**20} MiB of memory, more than the "
                f"{limit // 2**20} MiB the server allows for one picture (DECODE_MEMORY_BYTES).")
        with self._free:
            if not self._free.wait_for(lambda: self._used + cost <= limit, timeout=wait):
                raise DecodeRefused("The server is busy decoding other large pictures: try again in a minute.")
            self._used += cost
        try:
            yield
        finally:
            if cost >= TRIM_FROM:
                give_back()
            with self._free:
                self._used -= cost
                self._free.notify_all()


budget = _Budget()
