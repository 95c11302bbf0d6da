"""Streaming JSON for the importers: big documents are read item by item with ijson, never
loaded whole, so a 1M-annotation COCO file costs a parse per item, not the file in memory."""
from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import ijson
import numpy as np
from django.conf import settings

from .base import ItemError, malformed_message

BOM = b"\xef\xbb\xbf"
SCAN_CHUNK = 1 << 18  # bytes per step of the nesting scan
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
JSONError = ijson.JSONError  # malformed or truncated input (IncompleteJSONError is a subclass)


def open_source(source) -> IO[bytes]:
    """A fresh binary stream over the source: the importer's upload entries open lazily (and
    can be read twice); a plain SourceFile is wrapped."""
    opener = getattr(source, "open", None)
    return opener() if callable(opener) else io.BytesIO(source.data)


@contextmanager
def json_stream(source) -> Iterator[tuple[IO[bytes], bytes]]:
    """(stream positioned after any UTF-8 BOM, its first non-blank byte) for one source."""
    with open_source(source) as fh:
        head = fh.read(64)
        start = len(BOM) if head.startswith(BOM) else 0
        stripped = head[start:].lstrip()
        fh.seek(start)
        yield fh, stripped[:1]


def items(fh: IO[bytes], prefix: str) -> Iterator[Any]:
    # Floats as float, not Decimal: finite_number() and JSON fields want plain numbers.
    return ijson.items(fh, prefix, use_float=True)


def check_well_formed(fh: IO[bytes]) -> None:
    """Read the whole stream, building nothing (no item matches the prefix); JSONError if malformed."""
    for _ in ijson.items(fh, "\x00"):
        pass


def malformed(source, exc: Exception) -> ItemError:
    with open_source(source) as fh:
        head = fh.read(8)
    return ItemError(source.name, malformed_message(exc, head))


def max_depth() -> int:
    return settings.RAZMETKA_MAX_JSON_DEPTH


def nesting_depth(fh: IO[bytes], limit: int | None = None) -> int:
    """Deepest bracket nesting of a JSON stream, brackets inside strings not counted; read in
    chunks with numpy (no Python object per token), so a hostile file costs a read, flat memory.
    Stops early, returning a depth above `limit`, once that is exceeded.

    ijson's item prefixes grow with the depth ("images.item.item..."), so a few hundred KB of
    '[' cost it gigabytes (quadratic); Python's json and PyYAML recurse per level. Every JSON
    document of an import is measured here first (importing.py refuses one deeper than the
    API's RAZMETKA_MAX_JSON_DEPTH)."""
    depth = deepest = 0
    in_string = False
    carry = 0  # the run of backslashes that ended the previous chunk
    while chunk := fh.read(SCAN_CHUNK):
        arr = np.frombuffer(chunk, dtype=np.uint8)
        quotes = np.flatnonzero(arr == _QUOTE)
        slashes = np.flatnonzero(arr == _BACKSLASH)
        if slashes.size or carry:
            # A quote after an odd run of backslashes is escaped (runs found from their ends; a
            # run may go on from the previous chunk).
            escaped = np.zeros(quotes.size, dtype=bool)
            if carry % 2 and quotes.size and quotes[0] == 0:
                escaped[0] = True
            if slashes.size:
                breaks = np.flatnonzero(np.diff(slashes) != 1)
                starts = slashes[np.concatenate(([0], breaks + 1))]
                ends = slashes[np.concatenate((breaks, [slashes.size - 1]))]
                lengths = ends - starts + 1
                if starts[0] == 0:
                    lengths[0] += carry
                escaped |= np.isin(quotes - 1, ends[lengths % 2 == 1])
                carry = int(lengths[-1]) if ends[-1] == arr.size - 1 else 0
            else:
                carry = 0
            quotes = quotes[~escaped]
        steps = _STEP[arr]
        brackets = np.flatnonzero(steps)
        if brackets.size:
            # Inside a string: an odd number of (unescaped) quotes before it, or the reverse.
            inside = (np.searchsorted(quotes, brackets) % 2 == 1) ^ in_string
            levels = np.cumsum(steps[brackets[~inside]], dtype=np.int64) + depth
            if levels.size:
                deepest = max(deepest, int(levels.max()))
                depth = int(levels[-1])
        in_string ^= bool(quotes.size % 2)
        if limit is not None and deepest > limit:
            break
    return deepest


def too_deep(source, limit: int | None = None) -> ItemError | None:
    """An ItemError if the source's JSON nests deeper than the limit (None when it does not)."""
    limit = max_depth() if limit is None else limit
    with open_source(source) as fh:
        depth = nesting_depth(fh, limit)
    if depth > limit:
        return ItemError(source.name, f"JSON nested too deep: more than {limit} levels (at most {limit} are accepted)")
    return None
