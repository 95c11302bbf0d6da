"""One spelling for names people type (class names, prompts)."""
from __future__ import annotations

import unicodedata


def one_spelling(value: str) -> str:
    """Compatibility forms folded (full-width "ｂｉｒｄ" is "bird", NFD accents composed), invisible
    format characters (a zero-width space) dropped, runs of blanks made one space, ends trimmed."""
    folded = unicodedata.normalize("NFKC", value)
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return " ".join(visible.split())
