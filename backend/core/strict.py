"""Request bodies that say what they do not understand: a field the serializer does not know is a
400 naming it, where DRF drops it without a word (`{"split": "bogus"}` started an evaluation
of everything, as if the client had not asked for anything)."""
from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers


class StrictFieldsMixin:
    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                # Read-only fields are accepted (a client may send back what it read) but not named.
                known = ", ".join(sorted(name for name, field in self.fields.items() if not field.read_only))
                raise serializers.ValidationError({name: [f"Unknown field. Known: {known}."] for name in unknown})
        return super().to_internal_value(data)
