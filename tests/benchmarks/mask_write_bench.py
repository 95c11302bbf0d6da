"""What a mask write costs in validation and in storing the RLE canonically (backend/core/masks.py).

Run: .venv/bin/python tests/benchmarks/mask_write_bench.py
A 4000x3000 ellipse mask (5,625 characters of COCO RLE), each call timed over 50 runs in-process.
"""
import os, sys, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
import django; django.setup()
import numpy as np
from pycocotools import mask as mu
from backend.core.masks import canonical_rle
from backend.core.geometry import mask_from
h, w = 3000, 4000
m = np.zeros((h, w), np.uint8, order="F")
yy, xx = np.ogrid[:h, :w]
m[((yy - 1500) / 900) ** 2 + ((xx - 2000) / 1400) ** 2 < 1] = 1
rle = mu.encode(m); rle = {"size": [h, w], "counts": rle["counts"].decode()}
for name, fn in (("mask_from (validation, before)", lambda: mask_from(height=h, width=w, rle=rle, polygons=None)),
                 ("canonical_rle (added)", lambda: canonical_rle(rle))):
    fn(); t = time.perf_counter(); n = 50
    for _ in range(n): fn()
    print(f"{name}: {(time.perf_counter() - t) / n * 1000:.2f} ms per 12 MP ellipse mask ({len(rle['counts'])} chars)")
