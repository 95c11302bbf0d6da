from backend.core.errors import NotFound


def int_or_404(value) -> int:
    """A path id that is not an integer names nothing: 404, like any other unknown id."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound("Not found.") from None


def version_from(request) -> int | None:
    """DELETE carries its version in the body or as ?version=."""
    raw = request.data.get("version") if request.data else request.query_params.get("version")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def force_from(request) -> bool:
    """`?force=1`: a project admin writes through someone else's claim on purpose."""
    return request.query_params.get("force", "").lower() in {"1", "true", "yes"}
