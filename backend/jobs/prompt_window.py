"""Do a project's text prompts fit its engine's text window? Checked at project save and job start.

The web process has no tokenizer (importing transformers takes seconds), so this counts a LOWER
BOUND of the tokens: every run of letters/digits is at least one token (WordPiece and CLIP's BPE
both split on whitespace and punctuation, then into one or more pieces), and so is every run of
other symbols. Prompts refused here could never fit; prompts that pass may still be a little too
long (a word split into several pieces): the worker then counts exactly with the real tokenizer
and fails the job at once with the same kind of message (ml.inputs.PromptTooLongError), before
any image is processed."""
from __future__ import annotations

import re

# engine -> (what the window holds, tokens, model name). GroundingDINO reads every prompt as one
# text "a. b. c." with [CLS]/[SEP] (max_text_len 256); SAM 3 encodes each prompt on its own in a
# CLIP text encoder of 32 positions, start and end tokens included.
TEXT_WINDOWS = {
    "gdino-sam2": ("all", 256, "GroundingDINO"),
    "sam3": ("each", 32, "SAM 3"),
}

_PIECES = re.compile(r"[^\W_]+|[^\w\s]+|_+")


def min_tokens(text: str) -> int:
    """At least this many tokens for ``text`` (special tokens not included)."""
    return len(_PIECES.findall(text))


def prompt_window_error(prompts, engine: str | None) -> str | None:
    """None when ``prompts`` can fit ``engine``'s text window, else why not (for a 400)."""
    window = TEXT_WINDOWS.get(engine or "")
    if window is None or not isinstance(prompts, list):
        return None
    scope, limit, model = window
    # As the detector normalizes them (ml/detector.py _prompt): trailing dots go, the join adds one.
    phrases = [p.strip().lower().rstrip(".") for p in prompts if isinstance(p, str) and p.strip()]
    if scope == "all":
        needed = sum(min_tokens(p) for p in phrases) + len(phrases) + 2  # a "." per phrase, [CLS], [SEP]
        if needed > limit:
            return (f"These {len(phrases)} prompts make at least {needed} text tokens, but {model} reads at most "
                    f"{limit} tokens for all prompts together: use fewer or shorter prompts.")
        return None
    for phrase in phrases:
        needed = min_tokens(phrase) + 2  # start and end tokens
        if needed > limit:
            shown = phrase if len(phrase) <= 40 else phrase[:37] + "..."
            return (f"The prompt {shown!r} makes at least {needed} text tokens, but {model} reads at most "
                    f"{limit} tokens per prompt: shorten it.")
    return None
