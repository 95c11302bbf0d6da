"""Request bodies that say what they do not understand: a field the serializer does not know is a
400 naming it, where DRF drops it without a word (`{"split": "bogus"}` started an evaluation
of everything, as if the client had not asked for anything).

The same mixin makes numbers and flags strict. DRF's IntegerField took "1", " 1", 1.0 and even
"٣" (an Arabic-Indic three) as an integer, so a client that sent the optimistic-concurrency
`version` as a string, or an id as a float, went unnoticed. In a JSON body an integer field now
takes a JSON integer only (not a boolean, string or float), a float field a JSON number, a
boolean field true or false, a string field a JSON string (DRF stored `{"name": 1e308}` as
"1e+308"). A form-encoded (multipart) body carries only strings: there a field takes ASCII
digits ("12", "-3"; "0.5" for a float) and a flag 1/0/true/false.

A read-only field in a write is a 400 naming it ("`id` is read-only"), unless the value sent is
the one the object has (a client may send back what it read); it was dropped in silence.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

from django.http import QueryDict
from rest_framework import serializers

BIGINT = 2**63  # every id and counter is a PostgreSQL bigint at most
_FORM_INT = re.compile(r"-?[0-9]{1,19}")
_FORM_FLOAT = re.compile(r"-?[0-9]{1,300}(\.[0-9]{1,300})?")
_FORM_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def _in_form(field) -> bool:
    """The field's value came from a form-encoded body (strings by nature), not from JSON."""
    return isinstance(getattr(field.root, "initial_data", None), QueryDict)


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, float):
        return "a decimal number"
    if value is None:
        return "null"
    return f"a JSON {type(value).__name__}"


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {
        "strict": "A whole number is required: a JSON integer such as 3, not {kind}.",
        "range": "Out of range: a whole number from -2^63 to 2^63-1 is expected.",
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and _in_form(self) and _FORM_INT.fullmatch(data):
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("strict", kind=_kind(data))
        if not -BIGINT <= data < BIGINT:
            self.fail("range")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"strict": "A number is required: a JSON number such as 0.5, not {kind}."}

    def to_internal_value(self, data):
        if isinstance(data, str) and _in_form(self) and _FORM_FLOAT.fullmatch(data):
            data = float(data)
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("strict", kind=_kind(data))
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"strict": "true or false is required, not {kind}."}

    def get_value(self, dictionary):
        # A form's empty value is no value to DRF, so the default (false) was taken in silence.
        if isinstance(dictionary, QueryDict) and dictionary.get(self.field_name, None) == "":
            return ""
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, str) and _in_form(self) and data.lower() in _FORM_FLAGS:
            return _FORM_FLAGS[data.lower()]
        if data == "" and _in_form(self):
            self.fail("strict", kind="an empty value (send 1/0 or true/false)")
        if not isinstance(data, bool):
            self.fail("strict", kind=_kind(data))
        return data


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        # DRF refuses booleans only; a form's values are strings anyway.
        if not isinstance(data, str):
            self.fail("invalid")  # "Not a valid string."
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """DRF said '"accept" is not a valid choice.' without the choices (black-box round 16)."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            shown = str(data)[:60] if isinstance(data, (str, int, float)) else _kind(data)
            allowed = ", ".join(str(key) for key in self.choices)
            raise serializers.ValidationError(f'"{shown}" is not a valid choice: use one of {allowed}.', code="invalid_choice") from None


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An id as a strict integer (DRF looked up "1" and 1.0 as well)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and _in_form(self) and _FORM_INT.fullmatch(data):
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=_kind(data))
        if not -BIGINT <= data < BIGINT:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


_STRICT = {
    serializers.IntegerField: StrictIntegerField,
    serializers.FloatField: StrictFloatField,
    serializers.BooleanField: StrictBooleanField,
    serializers.CharField: StrictCharField,
    serializers.ChoiceField: StrictChoiceField,
    serializers.PrimaryKeyRelatedField: StrictPrimaryKeyRelatedField,
}


def strict_field(field: serializers.Field) -> serializers.Field:
    """`field` as its strict class (the same arguments), list children included."""
    strict = _STRICT.get(type(field))
    if strict is not None:
        return strict(*field._args, **field._kwargs)
    child = getattr(field, "child", None)
    if isinstance(field, (serializers.ListField, serializers.DictField)) and child is not None:
        new = strict_field(child)
        if new is not child:
            field.child = new
            new.bind(field_name="", parent=field)
    return field


def form_int(value, *, name: str) -> int | None:
    """An id from a form-encoded body: ASCII digits, or absent/empty (None)."""
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and -BIGINT <= value < BIGINT:
        return value
    if isinstance(value, str) and _FORM_INT.fullmatch(value) and -BIGINT <= int(value) < BIGINT:
        return int(value)
    raise serializers.ValidationError({name: [f"'{name}' is a whole number such as 3 (ASCII digits)."]})


def _same(sent, current) -> bool:
    try:
        return json.dumps(sent, sort_keys=True) == json.dumps(current, sort_keys=True)
    except (TypeError, ValueError):
        return False


UNKNOWN_NAMED = 10
_MISSING = object()


def _could_have_read(kind: str, sent, current) -> bool:
    """Meta.echo_derived: a number that moves without the object's version (a teammate's gallery
    upload moves a class's exemplar_count and its project's gallery_version). `sent` is a value an
    earlier read may have shown: for a "counter" (only grows) a whole number up to today's, for a
    "count" any whole number from 0. The object sent back as read is then not refused (black-box
    round 16b); gallery_version 99 for a gallery at 1 still is."""
    if isinstance(sent, bool) or not isinstance(sent, int) or sent < 0:
        return False
    return kind == "count" or (isinstance(current, int) and sent <= current)


def echo_context(data, serializer_class, fetch) -> dict:
    """The context for `serializer_class`(data=…): with the object as it is (`fetch()`) only when
    the body has fields the serializer does not take, so a plain PATCH costs no extra query."""
    if isinstance(data, Mapping) and set(data) - set(serializer_class().fields):
        return {"current": fetch()}
    return {}


class StrictFieldsMixin:
    def get_fields(self):
        return {name: strict_field(field) for name, field in super().get_fields().items()}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            data = self._without_echoes(data)
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(sorted(name for name, field in self.fields.items() if not field.read_only))
                # A few named, the rest counted: a body of 200,000 unknown keys was answered 39 MB.
                errors = {name: [f"Unknown field. Known: {known}."] for name in unknown[:UNKNOWN_NAMED]}
                if len(unknown) > UNKNOWN_NAMED:
                    errors["non_field_errors"] = [f"{len(unknown)} unknown fields in all (the first {UNKNOWN_NAMED} "
                                                  f"are named). Known: {known}."]
                raise serializers.ValidationError(errors)
            self._refuse_long_lists(data)
            read_only = sorted(name for name in data if self.fields[name].read_only)
            if not ("version" in data and not self._is_current_version(data["version"])):  # stale: a 409 later
                has_instance = getattr(self, "instance", None) is not None
                self._refuse_unread(read_only, data, lambda name: self._current(name, missing=_MISSING)
                                    if has_instance else _MISSING)
        return super().to_internal_value(data)

    def _refuse_unread(self, names, data: Mapping, shown) -> None:
        """A 400 "read-only" for each of `names` whose value in `data` no read of the object could
        have shown (`shown(name)`: what a read shows now; Meta.echo_derived numbers may lag it)."""
        derived = getattr(getattr(self, "Meta", None), "echo_derived", {})
        changed = [name for name in names if not _same(data[name], shown(name))
                   and not (name in derived and _could_have_read(derived[name], data[name], shown(name)))]
        if changed:
            raise serializers.ValidationError(
                {name: [f"`{name}` is read-only: leave it out (or send the value you read)."] for name in changed})

    def _without_echoes(self, data: Mapping) -> Mapping:
        """`data` less the fields of the object's read form (Meta.echo_of, rendered from
        context["current"]) sent back as read: a client may PATCH back what it GET. One sent with
        another value is a 400 "read-only"; with no object at hand they stay unknown."""
        echo_of = getattr(getattr(self, "Meta", None), "echo_of", None)
        current = self.context.get("current") if echo_of is not None else None
        if current is None:
            return data
        read = echo_of(current, context=self.context)
        echoed = [name for name in data if name not in self.fields and name in read.fields]
        if not echoed:
            return data
        if not _same(data.get("version"), getattr(current, "version", None)):
            # Sent back from an older read: the write's version check says so (409), not a
            # "read-only" complaint about fields that moved since (black-box round 16b).
            return {name: value for name, value in data.items() if name not in echoed}
        self._refuse_unread(echoed, data, read.data.get)
        return {name: value for name, value in data.items() if name not in echoed}

    def _refuse_long_lists(self, data: Mapping) -> None:
        """A list above its max_length is refused before its items are validated one by one (DRF
        checks the length after: 300,000 pairs cost 5 s of a web process before the 400)."""
        for name, field in self.fields.items():
            value = data.get(name)
            limit = getattr(field, "max_length", None) if isinstance(field, serializers.ListField) else None
            if limit is not None and isinstance(value, list) and len(value) > limit:
                raise serializers.ValidationError({name: [f"Ensure this field has no more than {limit} elements "
                                                          f"(it has {len(value)})."]})

    def _is_current_version(self, sent) -> bool:
        """`sent` is the object's version now (an older one: the write answers 409, not 400)."""
        instance = getattr(self, "instance", None)
        return instance is None or _same(sent, getattr(instance, "version", None))

    def _current(self, name: str, missing=None):
        """What a read of the object shows for this field (`missing` if it cannot be rendered)."""
        field = self.fields[name]
        try:
            attribute = field.get_attribute(self.instance)
            return None if attribute is None else field.to_representation(attribute)
        except Exception:  # a field this serializer cannot render without more context
            return missing


def empty_body(request) -> None:
    """For a write that takes no body (a claim, a password reset): anything sent is a 400 naming
    it, as an unknown field is elsewhere, rather than read as nothing."""
    from django.http.multipartparser import MultiPartParserError
    from rest_framework.exceptions import UnsupportedMediaType, ValidationError

    try:
        data = request.data
    except UnsupportedMediaType as refused:
        # An empty form (what a plain form post or Django's test client sends for "no body") is
        # no body either; one with fields is refused as any form on a JSON route.
        raw = request._request
        if raw.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise
        try:
            empty_form = not raw.POST and not raw.FILES
        except MultiPartParserError:  # no boundary: was a traceback and a bare 400, now the 415
            raise refused from None
        if empty_form:
            return
        raise
    if isinstance(data, Mapping):
        if data:
            names = ", ".join(sorted(str(k) for k in data.keys())[:20])
            raise ValidationError({"detail": f"This request takes no body; got: {names}.", "code": "unknown_field"})
        return
    # (No body at all reads as {}; a JSON `null` is a body.)
    if data not in ("", b""):
        raise ValidationError({"detail": "This request takes no body (send nothing, or {}).", "code": "invalid"})


def single_form_fields(request, *, files: tuple[str, ...] = ("files",)) -> None:
    """A multipart form's fields, each once (the query string's rule): a field sent twice took its
    last value without a word (`as_accepted` 1 then 0 read false, the first of two `file` parts was
    dropped). `files` name the file fields; a text part under such a name is refused too (it was
    ignored, and the upload answered as if it had sent nothing wrong)."""
    from rest_framework.exceptions import ValidationError

    posted = getattr(request, "POST", None)
    if isinstance(posted, QueryDict):
        for name in posted:
            if name in files:
                raise ValidationError({name: f"'{name}' must be a file part, not a text field."})
            if len(posted.getlist(name)) > 1:
                raise ValidationError({name: f"'{name}' is sent more than once; send it once."})
    uploaded = getattr(request, "FILES", None)
    if uploaded is not None:
        for name in uploaded:
            if name not in files or (len(uploaded.getlist(name)) > 1 and name != "files"):
                raise ValidationError({name: f"'{name}' is sent more than once, or is no file field here."})


def id_versions(pairs, what: str) -> dict[int, int]:
    """[[id, version], …] as a client read them -> {id: version}; an id listed twice is refused
    (accept-all's `seen`, a bulk delete's `images`)."""
    versions: dict[int, int] = {}
    for item_id, version in pairs:
        if item_id in versions:
            raise serializers.ValidationError(f"{what} {item_id} is listed twice")
        versions[item_id] = version
    return versions
