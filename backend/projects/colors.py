"""Colours for classes created without one (imports, gallery zips, the Classes page)."""
from __future__ import annotations

import colorsys

from .models import LabelClass

# Sasha Trubetskoy's 20 distinct colours (LabelClass.color's default is the first), most distinct first.
PALETTE = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#808080",
]


def distinct_colors(project_id: int, count: int) -> list[str]:
    """`count` colours no class of the project uses yet, palette first; once the palette is used
    up, evenly spread hues (golden angle) that are not in use either."""
    used = {c.lower() for c in LabelClass.objects.filter(project_id=project_id).values_list("color", flat=True)}
    out: list[str] = []
    for color in PALETTE:
        if len(out) == count:
            return out
        if color not in used:
            out.append(color)
            used.add(color)
    step = 0
    while len(out) < count:
        color = _golden_hue(step)
        step += 1
        if color not in used:
            out.append(color)
            used.add(color)
    return out


def _golden_hue(step: int) -> str:
    hue = (step * 0.618033988749895) % 1.0
    lightness = (0.45, 0.6, 0.35)[(step // 24) % 3]  # after 24 hues, vary lightness too
    r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.7)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))
