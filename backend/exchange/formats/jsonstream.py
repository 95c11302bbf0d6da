"""Streaming JSON for the importers: big documents are read item by item with ijson, never
loaded whole, so a 1M-annotation COCO file costs a parse per item, not the file in memory."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import ijson
import numpy as np
from django.conf import settings

from .base import LOCATE_LIMIT, ItemError, malformed_message

BOM = b"\xef\xbb\xbf"
SCAN_CHUNK = 1 << 18  # bytes per step of the nesting scan
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
# Malformed or truncated input (IncompleteJSONError is a subclass); the C backend raises a bare
# UnicodeDecodeError for bytes that are not UTF-8 (or a lone low surrogate escape, see below).
JSONError = (ijson.JSONError, UnicodeDecodeError)
_PYTHON_BACKEND = ijson.get_backend("python")
# An escaped UTF-16 surrogate after an even run of backslashes (an odd run escapes the backslash
# itself: '\\\\ud800' is text): a high-low pair, or a lone one (group 1).
_SURROGATE_ESCAPE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u(?:[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|([dD][89a-fA-F][0-9a-fA-F]{2}))"
)
_ESCAPE_TAIL = 12  # bytes an escape (a pair: '\\ud83d\\ude00') may still need from the next chunk


def open_source(source) -> IO[bytes]:
    """A fresh binary stream over the source: the importer's upload entries open lazily (and
    can be read twice); a plain SourceFile is wrapped."""
    opener = getattr(source, "open", None)
    return opener() if callable(opener) else io.BytesIO(source.data)


@contextmanager
def json_stream(source) -> Iterator[tuple[IO[bytes], bytes]]:
    """(stream positioned after any UTF-8 BOM, its first non-blank byte) for one source."""
    exact = has_lone_surrogate(source)  # (its own read, done before this stream is opened)
    with open_source(source) as fh:
        head = fh.read(64)
        start = len(BOM) if head.startswith(BOM) else 0
        stripped = head[start:].lstrip()
        fh.seek(start)
        yield (_ExactStrings(fh) if exact else fh), stripped[:1]


class _ExactStrings:
    """A stream read by ijson's pure Python backend. The C backend (yajl) alters an escaped lone
    surrogate: "\\ud800" becomes '?', "\\ud800\\u0041" a wrong character, "\\udc00" a
    UnicodeDecodeError. The Python backend keeps it ('\\ud800'), so the item that holds it is
    refused like a LabelMe file's (importing._plan, base.image_base_name) and no class is created
    under an altered name. Only documents with such an escape pay for the slower parser."""

    backend = _PYTHON_BACKEND

    def __init__(self, fh: IO[bytes]):
        self._fh = fh

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)


def has_lone_surrogate(source) -> bool:
    """Whether the source's JSON holds an escaped unpaired surrogate ("\\ud800"). Read in chunks,
    a substring test each (a regex only where '\\ud' occurs), once per source."""
    cached = getattr(source, "_lone_surrogate", None)
    if cached is not None:
        return cached
    found = _scan_lone_surrogate(source)
    try:
        source._lone_surrogate = found
    except AttributeError:
        pass
    return found


def _scan_lone_surrogate(source) -> bool:
    tail = b""
    with open_source(source) as fh:
        while True:
            chunk = fh.read(SCAN_CHUNK)
            buf = tail + chunk
            if not (b"\\ud" in buf or b"\\uD" in buf):
                if not chunk:
                    return False
                tail = _carry(buf, max(len(buf) - _ESCAPE_TAIL, 0))
                continue
            cut = len(buf) if not chunk else max(len(buf) - _ESCAPE_TAIL, 0)
            for found in _SURROGATE_ESCAPE.finditer(buf):
                if chunk and found.end() > len(buf) - _ESCAPE_TAIL:  # may be a pair once more is read
                    cut = min(cut, found.start())
                    break
                if found.group(1):
                    return True
            if not chunk:
                return False
            tail = _carry(buf, cut)


def _carry(buf: bytes, cut: int) -> bytes:
    """What the next chunk's scan starts with: buf from `cut`, moved back to the start of a run of
    backslashes there (its parity decides what follows), the run shortened to that parity."""
    while cut > 0 and buf[cut - 1] == _BACKSLASH:
        cut -= 1
    end = cut
    while end < len(buf) and buf[end] == _BACKSLASH:
        end += 1
    return b"\\" * ((end - cut) % 2) + buf[end:]


def items(fh: IO[bytes], prefix: str) -> Iterator[Any]:
    # Floats as float, not Decimal: finite_number() and JSON fields want plain numbers.
    return getattr(fh, "backend", ijson).items(fh, prefix, use_float=True)


def check_well_formed(fh: IO[bytes]) -> None:
    """Read the whole stream, building nothing (no item matches the prefix); JSONError if malformed."""
    for _ in getattr(fh, "backend", ijson).items(fh, "\x00"):
        pass


def malformed(source, exc: Exception) -> ItemError:
    """The item error for a document ijson refused. ijson says no position; a document up to
    LOCATE_LIMIT is read again to say where (line and column)."""
    with open_source(source) as fh:
        data = fh.read(LOCATE_LIMIT + 1)
    return ItemError(source.name, malformed_message(exc, data[:8], data if len(data) <= LOCATE_LIMIT else None))


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
