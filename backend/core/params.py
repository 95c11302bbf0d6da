import re
from collections.abc import Mapping

from django.http import QueryDict
from rest_framework.exceptions import ValidationError

from backend.core.errors import NotFound
from backend.core.filters import single_valued


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
    single_valued(request.query_params, lists=False)  # `?version=1&version=2` took the last one
    raw = body.get("version") if body else request.query_params.get("version")
    if raw is None:
        return None
    # A JSON integer in a JSON body; ASCII digits in the query string or a form ("٣", " 1", "1.0"
    # and a JSON "1" were read as versions).
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    textual = not body or isinstance(body, QueryDict)
    if textual and isinstance(raw, str) and re.fullmatch(r"[0-9]{1,18}", raw):
        return int(raw)
    raise ValidationError({"version": "A version is a whole number: send the version you last read "
                                      "(a JSON integer in a body, ASCII digits in ?version=)."})


FLAGS = {"1": True, "true": True, "0": False, "false": False}


def flag_from(request, name: str) -> bool:
    """A boolean query parameter: 1/0/true/false, sent once; absent is false. `?force=yes` and
    `?force=1&force=0` were taken without a word."""
    values = request.query_params.getlist(name)
    if not values:
        return False
    if len(values) > 1:
        raise ValidationError({name: f"'{name}' is sent {len(values)} times; send it once."})
    value = FLAGS.get(values[0].lower())
    if value is None:
        raise ValidationError({name: f"'{name}' takes 1, 0, true or false, not '{values[0]}'."})
    return value


def force_from(request) -> bool:
    """`?force=1`: a project admin writes through someone else's claim on purpose."""
    return flag_from(request, "force")


def check_write_params(request, view) -> None:
    """A write (POST, PUT, PATCH, DELETE) takes only the query parameters its view declares
    (`write_params`: action → names), each once: an unknown one is a 400 naming it, as on the
    lists, where it was ignored while the write went ahead."""
    params = request.query_params
    if not params:
        return
    single_valued(params, lists=False)
    action = getattr(view, "action", None)
    allowed = set((getattr(view, "write_params", None) or {}).get(action, ()))
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationError({unknown[0]: f"Unknown parameter '{unknown[0]}' on this write. Allowed: "
                                           f"{', '.join(sorted(allowed)) or 'none'}."})


def version_parameter():
    """The schema's `?version=` of a DELETE (version_from): generated clients could not send it."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter("version", int, description="The version you last read (or send {\"version\": n} as the "
                            "body); one of the two is required. A newer one on the server is a 409.")
