"""Size and nesting limits for every JSON body, checked before the parser runs.

Python's json module recurses once per nesting level, so ~1000 levels raise RecursionError
(a 500) and deeper ones can exhaust the stack; nothing limits the body's size either. The
depth is measured with one regex pass and a cumulative sum, both in C, so a hostile body
costs no more than reading it.
"""
from __future__ import annotations

import math
import re

import numpy as np
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class JSONTooLarge(ParseError):
    default_code = "too_large"


class JSONTooDeep(ParseError):
    default_code = "too_deep"


def nesting_depth(body: bytes) -> int:
    """Deepest bracket nesting of a JSON text, brackets inside strings not counted."""
    structural = _STRING.sub(b'""', body)
    if not structural:
        return 0
    steps = _OPEN[np.frombuffer(structural, dtype=np.uint8)].astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def check_json_body(body: bytes) -> None:
    max_bytes, max_depth = settings.DATA_UPLOAD_MAX_MEMORY_SIZE, settings.RAZMETKA_MAX_JSON_DEPTH
    if len(body) > max_bytes:
        raise JSONTooLarge(f"The JSON body is larger than {max_bytes} bytes.")
    depth = nesting_depth(body)
    if depth > max_depth:
        raise JSONTooDeep(f"The JSON body is nested {depth} levels deep; at most {max_depth} are accepted.")


class DuplicateKey(ValueError):
    pass


def unique_keys(pairs: list) -> dict:
    """json's object_pairs_hook: a key twice in one object is refused. The last one won without a
    word (`{"version": 1, ..., "version": 7}` wrote on whatever version came last)."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


class NumberOutOfRange(ValueError):
    """A JSON number too large for a float (1e999): Python reads it as infinity, which a field
    then refused as "Value must be valid JSON" although the body was valid JSON."""


def finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise NumberOutOfRange(literal)
    return value


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser behind the size and depth limits, refusing duplicate keys; every JSON
    endpoint uses it."""

    def _load(self, body: bytes, parser_context) -> object:
        from rest_framework.utils import json as drf_json

        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = body.decode(encoding)
            return drf_json.loads(text, parse_constant=drf_json.strict_constant if self.strict else None,
                                  object_pairs_hook=unique_keys, parse_float=finite_float)
        except NumberOutOfRange as exc:
            raise ParseError(f"The number {exc.args[0][:40]} is out of range (beyond ±1.8e308); send a finite "
                             "number.") from None
        except DuplicateKey as exc:
            raise ParseError(f"The key '{str(exc.args[0])[:80]}' appears twice in one object of the JSON body; "
                             "send it once.") from None
        except ValueError as exc:  # not JSON, or not in its charset (UnicodeDecodeError)
            raise ParseError(f"JSON parse error - {exc}") from None

    def parse(self, stream, media_type=None, parser_context=None):
        # DRF hands JSON parsers request.body, which Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE
        # (RequestDataTooBig, answered in core.errors); reading one byte more keeps the cap
        # here too if that ever changes.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream is not None else b""
        check_json_body(body)
        try:
            data = self._load(body, parser_context)
        except RecursionError:  # the depth check should make this unreachable; never a 500
            raise JSONTooDeep("The JSON body is nested too deeply.") from None
        if b"\\u" in body:  # only a \u escape can carry a NUL or a lone surrogate
            bad = unstorable_text(data)
            if bad is not None:
                raise ParseError(f"Text at {bad} holds a NUL character or an unpaired surrogate (\\u0000, "
                                 "\\ud800-\\udfff), which cannot be stored.")
        return data


def _unstorable(text: str) -> bool:
    if text.isascii():
        return "\x00" in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in text


def unstorable_text(data, path: str = "the body") -> str | None:
    """Where a string (key or value) holds what PostgreSQL text and UTF-8 cannot: NUL, or a lone
    surrogate. Either reached the database as a 500 (or broke the 400 that echoed it)."""
    if isinstance(data, str):
        return path if _unstorable(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            if _unstorable(key):
                return f"a key of {path}"
            found = unstorable_text(value, f"{path}.{key}" if path != "the body" else key)
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = unstorable_text(value, f"{path}[{i}]")
            if found:
                return found
    return None
