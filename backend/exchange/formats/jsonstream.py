"""Streaming JSON for the importers: big documents are read item by item with ijson, never
loaded whole, so a 1M-annotation COCO file costs a parse per item, not the file in memory."""
from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import ijson

from .base import ItemError

BOM = b"\xef\xbb\xbf"
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
    return ItemError(source.name, f"malformed JSON: {exc}")
