"""One spelling for names people type (class names, prompts)."""
from __future__ import annotations

import unicodedata


def one_spelling(value: str) -> str:
    """Compatibility forms folded (full-width "ｂｉｒｄ" is "bird", NFD accents composed), invisible
    format characters (a zero-width space) dropped, runs of blanks made one space, ends trimmed."""
    folded = unicodedata.normalize("NFKC", value)
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return " ".join(visible.split())


# Alphabets whose letters look alike: a name mixing them ('аdmin' with a Cyrillic 'а') passes for
# another. Mixing others is how names are written (Japanese: kanji with kana) and is allowed.
_LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")


def lookalike_mix(value: str) -> tuple[str, str, str] | None:
    """(main script, odd script, the odd script's first letter) when the letters of `value` come
    from two or more of the look-alike alphabets (odd: the one with the fewest letters); None otherwise."""
    letters: dict[str, list[str]] = {}
    for char in value:
        if not unicodedata.category(char).startswith("L"):
            continue  # digits, punctuation, marks belong to every alphabet
        script = unicodedata.name(char, "").split(" ", 1)[0]
        if script in _LOOKALIKE_SCRIPTS:
            letters.setdefault(script, []).append(char)
    if len(letters) < 2:
        return None
    ranked = sorted(letters, key=lambda name: -len(letters[name]))
    return ranked[0].title(), ranked[-1].title(), letters[ranked[-1]][0]
