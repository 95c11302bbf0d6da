"""How long a worker takes to turn a stored photo into the RGB pixels the models read.

Run: .venv/bin/python tests/benchmarks/decode_bench.py [--repeats 5]
Prints ms per image for jobs.engine.decode_rgb (OpenCV for plain JPEG/PNG) and for the Pillow-only
decode it replaced, on a 4000x3000 JPEG (q90, with grain: a phone photo's ~4 MB) and a 320x240 PNG (the tiny-model
benchmarks' images), alternating the two so a change of this host's speed hits both.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def pillow_only(data: bytes):
    import numpy as np
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import django

    django.setup()
    import numpy as np
    from PIL import Image as PILImage

    from backend.jobs.engine import decode_rgb
    from ml.tiny import synthetic_image

    files = {}
    rng = np.random.default_rng(0)
    for name, (h, w, fmt, params) in {"12 MP JPEG": (3000, 4000, "JPEG", {"quality": 90}),
                                      "320x240 PNG": (240, 320, "PNG", {})}.items():
        pixels = synthetic_image(7, h=h, w=w)
        if fmt == "JPEG":  # sensor-like grain: a photo's size (~4 MB), not a flat drawing's
            pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        PILImage.fromarray(pixels).save(out, format=fmt, **params)
        files[name] = out.getvalue()
    for name, data in files.items():
        times = {"decode_rgb": [], "pillow only": []}
        n = 3 if "JPEG" in name else 50
        for _ in range(args.repeats):
            for label, decode in (("decode_rgb", decode_rgb), ("pillow only", pillow_only)):
                t0 = time.perf_counter()
                for _ in range(n):
                    decode(data)
                times[label].append((time.perf_counter() - t0) / n * 1000)
        print(f"{name} ({len(data) / 1e6:.2f} MB): " + ", ".join(
            f"{label} {statistics.median(v):.2f} ms (runs {min(v):.2f}-{max(v):.2f})" for label, v in times.items()))


if __name__ == "__main__":
    main()
