"""One spelling for names people type (class names, prompts)."""
from __future__ import annotations

import re
import unicodedata


# Characters that show nothing but are not format characters (Cf): the combining grapheme joiner,
# Hangul and Khmer fillers; and the braille blank, which shows as a space. 'tool', 'tool\u034f' and
# 'tool\u2800' were three classes that print the same (black-box round 15).
_INVISIBLE = {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u3164", "\uffa0"}
_BLANK = {"\u2800"}


def _ignorable(c: str) -> bool:
    """Shows nothing of its own: format characters (Cf: zero-width space, joiners), the fillers
    above, variation selectors (U+FE00-FE0F, U+E0100-E01EF) and Mongolian free variation
    selectors (U+180B-180F), and noncharacters (U+FDD0-FDEF, U+xFFFE/xFFFF). 'tool', 'tool\ufe0f'
    and 'tool\uffff' were separate classes that print the same (black-box round 16)."""
    o = ord(c)
    return (unicodedata.category(c) == "Cf" or c in _INVISIBLE or 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF
            or 0x180B <= o <= 0x180F or 0xFDD0 <= o <= 0xFDEF or (o & 0xFFFE) == 0xFFFE)


# Format characters that are part of what is written: the joiners of emoji sequences (👨‍👩‍👧) and of
# Persian / Indic words, and the tag characters of subdivision flags (the Scotland flag).
_JOINING = {"\u200c", "\u200d"}


def printable(c: str) -> bool:
    """For file names: str.isprintable(), also for characters newer than this Python's Unicode
    tables (🩷, U+1FA77, is Unicode 15: 'unassigned' here, drawn by browsers and typed by people)
    and for joiners and tag characters; bidi controls (a right-to-left override) and other
    invisible format characters stay out."""
    return (c.isprintable() or c in _JOINING or 0xE0020 <= ord(c) <= 0xE007F
            or (unicodedata.category(c) == "Cn" and not _ignorable(c)))


def drawn(text: str) -> str:
    """`text` with only what is drawn (printable) and the joiners and tags that join something
    (_kept): a ZWJ between Latin letters or a lone tag character stayed in file names while class
    names dropped them (black-box round 18b)."""
    chars = [c for c in text if printable(c)]
    return "".join(c for i, c in enumerate(chars) if _kept(chars, i))


def one_spelling(value: str) -> str:
    """Compatibility forms folded (full-width "ｂｉｒｄ" is "bird", NFD accents composed), invisible
    characters (a zero-width space, a filler) dropped, runs of blanks made one space, ends trimmed.
    Joiners that are part of the writing stay (see _kept)."""
    folded = unicodedata.normalize("NFKC", value)
    kept = [c for c in folded if not _ignorable(c) or c in _JOINING or _is_tag(c)]
    visible = "".join(" " if c in _BLANK else c for i, c in enumerate(kept) if _kept(kept, i))
    return " ".join(visible.split())


def _is_tag(c: str) -> bool:
    return 0xE0020 <= ord(c) <= 0xE007F


def _kept(chars: list[str], i: int) -> bool:
    """A joiner stays only between two characters it joins: emoji of a sequence (👨‍🔧) or letters
    of a script that writes with it (Persian, Indic); beside a space, an end, another joiner or an
    ASCII / look-alike-alphabet letter it shows nothing and goes ('to\u200dol' is 'tool'). Tag
    characters stay only after the waving black flag or another tag (a subdivision flag)."""
    c = chars[i]
    if _is_tag(c):
        return i > 0 and (chars[i - 1] == "\U0001F3F4" or _is_tag(chars[i - 1]))
    if c not in _JOINING:
        return True
    return 0 < i < len(chars) - 1 and _joinable(chars[i - 1]) and _joinable(chars[i + 1])


def _joinable(c: str) -> bool:
    if c.isspace() or ord(c) < 0x80 or c in _JOINING or _is_tag(c):
        return False
    return unicodedata.name(c, "").split(" ", 1)[0] not in _LOOKALIKE_SCRIPTS


def control_character(value: str) -> str | None:
    """The first control character (C0, DEL, C1: an ESC that starts a terminal colour code) in
    `value`, as U+XXXX, or None."""
    for c in value:
        if unicodedata.category(c) == "Cc":
            return f"U+{ord(c):04X}"
    return None


def shows_something(value: str) -> bool:
    """Whether `value` has a character that is drawn on its own (not only combining marks)."""
    return any(not unicodedata.category(c).startswith(("M", "Z")) for c in value)


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


# Cyrillic, Greek and Armenian letters drawn like a Latin one: only these make a mixed word pass
# for another. 'μm', '10kΩ', 'ΔT' or 'λmax' mix alphabets as units and formulas are written
# (black-box round 18b: they were refused).
_LATIN_LOOKALIKES = set(
    "АВЕКМНОРСТУХІЈЅԀԌԚԜаеорсухіјѕԁһӏԛԝѵԍ"  # Cyrillic
    "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοικνρτυχϲϳ"  # Greek
    "ՕՍօսոհցգ"  # Armenian
)


def lookalike_word(value: str) -> tuple[str, str, str, str] | None:
    """(word, main script, odd script, odd letter) for the first word of `value` whose letters mix
    look-alike alphabets with a letter drawn like a Latin one ('dоg' with a Cyrillic 'о', 'саt');
    None otherwise. Per word: 'USB-кабель' and 'Wi-Fi роутер' are how names are written."""
    for word in re.findall(r"[^\W\d_]+", value):
        mixed = lookalike_mix(word)
        if mixed and any(c in _LATIN_LOOKALIKES for c in word):
            return (word, *mixed)
    return None


def lookalike_problem(name: str, what: str = "class") -> str | None:
    """Why `name` cannot be a new name, or None: 'dоg' (Cyrillic 'о') beside 'dog' made two classes
    that look one in every list and export."""
    mixed = lookalike_word(name)
    if not mixed:
        return None
    word, main, odd, letter = mixed
    return (f"'{word}' in this {what} name mixes {main} and {odd} letters ('{letter}' is {odd}), so it can pass "
            "for another name: write each word in one alphabet.")
