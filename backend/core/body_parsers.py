"""Which body types a view takes: JSON everywhere (settings), multipart only where files are sent.

With both parsers on every view, a form post reached every JSON write: a form field is always
a string, so `label_class=""` cleared an object's class and `flag=""` was silently dropped,
where the same JSON body was refused. A view that takes files lists those actions in
`multipart_actions`; anything else answers 415 saying what to send.
"""
from __future__ import annotations

import html

from django.http import multipartparser
from rest_framework.parsers import MultiPartParser

from .text import drawn


def _takes_files(view) -> bool:
    # get_parsers runs before DRF sets view.action: read it from the route's method map.
    request = getattr(view, "request", None)
    action = getattr(view, "action", None) or getattr(view, "action_map", {}).get(
        (getattr(request, "method", "") or "").lower())
    return action in getattr(view, "multipart_actions", ())


class FilesOnlyWhereNamed:
    """For a viewset whose `multipart_actions` take files (multipart); its other actions take JSON."""

    multipart_actions: tuple[str, ...] = ()
    multipart_field = "files"  # named in the 415's message

    def get_parsers(self):
        if _takes_files(self):
            return [MultiPartParser()]
        return super().get_parsers()


def unsupported_media_message(context: dict) -> str:
    request = context.get("request")
    view = context.get("view")
    wanted = (f"multipart/form-data (the file in a '{getattr(view, 'multipart_field', 'files')}' field)"
              if _takes_files(view) else "JSON (Content-Type: application/json)")
    sent = (getattr(request, "content_type", "") or "").split(";")[0].strip() or "no Content-Type"
    return f"This request takes a {wanted} body; it was sent as {sent}."


def sanitize_file_name(self, file_name):
    """Django's MultiPartParser.sanitize_file_name, keeping characters newer than this Python's
    Unicode tables: '🩷.png' and '🫨.png' were both stored as '.png' (black-box round 17)."""
    file_name = html.unescape(file_name)
    file_name = file_name.rsplit("/")[-1].rsplit("\\")[-1]
    file_name = drawn(file_name)
    return None if file_name in {"", ".", ".."} else file_name


def install() -> None:
    """Every multipart body (Django's request.FILES and DRF's parser) is read by this one class."""
    multipartparser.MultiPartParser.sanitize_file_name = sanitize_file_name
