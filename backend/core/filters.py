"""Allowlisted list filtering and ordering: an unknown query parameter is a 400, never a lookup."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

RESERVED_PARAMS = {"page", "page_size"}

FilterFn = Callable[[QuerySet, str], QuerySet]


def single_valued(params: Mapping[str, str], *, lists: bool = True) -> None:
    """A parameter sent twice is a 400: `?status=new&status=in_review` answered for in_review
    alone (the last one won), so a client that repeats keys for a list got a narrowed answer.
    `lists`: the parameters are a list's filters (the message says how to give several values)."""
    for name, values in getattr(params, "lists", lambda: ())():
        if len(values) > 1:
            how = (f" (a filter that takes several values takes them comma-separated, e.g. {name}=a,b)" if lists else "")
            raise ValidationError({name: f"'{name}' is sent {len(values)} times; send it once{how}."})


def apply_filters(
    queryset: QuerySet,
    params: Mapping[str, str],
    *,
    filters: Mapping[str, FilterFn],
    orderings: Mapping[str, str],
    default_ordering: str,
) -> QuerySet:
    single_valued(params)
    unknown = sorted(set(params) - RESERVED_PARAMS - set(filters) - {"ordering"})
    if unknown:
        raise ValidationError(
            {unknown[0]: f"Unknown filter '{unknown[0]}'. Allowed filters: {', '.join(sorted(filters)) or 'none'}."}
        )
    for name, fn in filters.items():
        value = params.get(name)
        refuse_if_empty(name, value)
        if value is not None:
            queryset = run_filter(name, fn, queryset, value)
    refuse_if_empty("ordering", params.get("ordering"))
    ordering = params.get("ordering") or default_ordering
    descending = ordering.startswith("-")
    field = orderings.get(ordering[1:] if descending else ordering)  # '--id' is no ordering
    if field is None:
        raise ValidationError({"ordering": f"Unknown ordering '{ordering}'. Allowed: {', '.join(sorted(orderings))}."})
    return queryset.order_by(f"-{field}" if descending else field, "-id" if descending else "id")


def only_params(params: Mapping[str, str], allowed=(), *, paged: bool = True) -> None:
    """A list without filters (or with its own few): an unknown parameter is a 400 naming it, as on
    the lists that filter (a typo such as `?stauts=failed` returned everything). `paged=False`: a
    single object (a file), which takes no page parameters either."""
    single_valued(params, lists=paged)
    known = (RESERVED_PARAMS if paged else set()) | set(allowed)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValidationError({unknown[0]: f"Unknown parameter '{unknown[0]}'. Allowed: "
                                           f"{', '.join(sorted(known)) or 'none'}."})


def refuse_if_empty(name: str, value: str | None) -> None:
    """An empty value is a 400 naming the parameter: '?id=' returned every row and '?id=,' none."""
    if value == "":
        raise ValidationError({name: f"'{name}' is empty: give a value, or leave the parameter out."})


def run_filter(name: str, fn: FilterFn, queryset: QuerySet, value: str) -> QuerySet:
    """fn on the queryset; its complaint is keyed by the query parameter the client sent (the
    filters name no fields: "annotations__label_class" is not a parameter anyone can send)."""
    try:
        return fn(queryset, value)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from None


def int_list(value: str) -> list[int]:
    """"3" or "3,5,8": ids as PostgreSQL's bigint holds them, in ASCII digits ('٢' and '２' were
    taken as 2); anything else, an empty item ('1,,2', ',') included, is a 400."""
    parts = value.split(",")
    if not all(p.isascii() and p.isdigit() for p in parts):  # '1,,2' and ',' too
        raise ValidationError("Expected an integer or a comma-separated list of integers (ASCII digits).")
    ids = [int(v) for v in parts if v]
    if any(not 0 <= i < 2**63 for i in ids):
        raise ValidationError("Expected ids from 0 to 2^63-1.")
    return ids


def one_id(name: str, value: str) -> int:
    """A query parameter that names one object: its id, or a 400 keyed by the parameter."""
    ids = run_filter(name, lambda _, raw: int_list(raw), None, value)
    if len(ids) != 1:
        raise ValidationError({name: ["Expected one id."]})
    return ids[0]


def choice_filter(field: str, choices: list[str]) -> FilterFn:
    def apply(queryset: QuerySet, value: str) -> QuerySet:
        values = value.split(",")
        bad = [v for v in values if v not in choices]  # '' too: 'status=new,' is a typo, not 'new'
        if bad:
            raise ValidationError(f"Unknown value '{bad[0]}'. Allowed: {', '.join(choices)}.")
        return queryset.filter(**{f"{field}__in": values})

    return apply


def int_filter(field: str) -> FilterFn:
    def apply(queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(**{f"{field}__in": int_list(value)})

    return apply


def bool_filter(field: str) -> FilterFn:
    def apply(queryset: QuerySet, value: str) -> QuerySet:
        if value.lower() not in {"true", "false", "1", "0"}:
            raise ValidationError("Expected true or false.")
        return queryset.filter(**{field: value.lower() in {"true", "1"}})

    return apply
