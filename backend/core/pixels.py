"""High-bit pictures (16-bit, 32-bit int, float) as 8-bit grey, the one way every view of an image
makes them: the thumbnail, the review page's rendition and (in ml/, which has no Django) the
models' input, `ml.inputs.to_uint8`. Scaled by the brightest value present when it is above 255,
so a 12-bit scan in a 16-bit file is neither black (the high byte) nor white (clipping); a float
image whose values lie in 0..1 is scaled by 255; NaN and infinities count as 0 and negatives as 0. The review page showed a 12-bit TIFF almost black and a
32-bit one all white while the models saw it scaled (round 11)."""
from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def eight_bit(img: PILImage.Image) -> PILImage.Image:
    """An "L" image of a high-bit one (HIGH_BIT_MODES); other modes are returned as they are."""
    if img.mode not in HIGH_BIT_MODES:
        return img
    # float32 halves the copy of float64 (a 12 MP scan: 48 MB); a level may differ by one from ml's.
    values = np.asarray(img.convert("I") if img.mode.startswith("I;16") else img).astype(np.float32)
    np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    high = float(values.max(initial=0.0))
    if high > 255:
        values *= np.float32(255 / high)
    elif img.mode == "F" and 0 < high <= 1:
        values *= np.float32(255)  # a float image in 0..1 (the usual convention) was all black
    np.clip(values, 0, 255, out=values)
    return PILImage.fromarray(values.astype(np.uint8), "L")
