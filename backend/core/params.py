import re
from collections.abc import Mapping

from rest_framework.exceptions import ValidationError

from backend.core.errors import NotFound


def int_or_404(value) -> int:
    """A path id that is not an integer names nothing: 404, like any other unknown id."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound("Not found.") from None


def version_from(request, *, also: tuple[str, ...] = ()) -> int | None:
    """DELETE carries its version in the body or as ?version=. Anything else it is sent is a 400:
    `?versoin=3` or `?version=3x` answered "'version' is required", a body `[3]` was a 500, and
    unknown body fields or parameters were ignored while the write went ahead."""
    body = request.data
    if body and not isinstance(body, Mapping):
        raise ValidationError({"detail": 'The body must be a JSON object such as {"version": 3}.'})
    extra = sorted((set(body or ()) - {"version"}) | (set(request.query_params) - {"version", *also}))
    if extra:
        allowed = ", ".join(sorted({"version", *also}))
        raise ValidationError({extra[0]: f"Unknown field or parameter '{extra[0]}'. Allowed: {allowed}."})
    raw = body.get("version") if body else request.query_params.get("version")
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", raw):
        return int(raw)
    raise ValidationError({"version": "A version is a whole number: send the version you last read."})


def force_from(request) -> bool:
    """`?force=1`: a project admin writes through someone else's claim on purpose."""
    return request.query_params.get("force", "").lower() in {"1", "true", "yes"}
