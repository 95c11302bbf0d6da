"""Six 64x80 images with a red 'hammer' and a blue 'wrench' square each: a Mask R-CNN training set."""
from __future__ import annotations

import numpy as np


def two_class_samples():
    from ml.training.maskrcnn import Sample

    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        image = rng.integers(0, 60, size=(64, 80, 3), dtype=np.uint8)
        objects = []
        for label, color, (x0, y0) in (("hammer", (230, 40, 40), (5 + i, 8)), ("wrench", (40, 40, 230), (45, 20 + i))):
            mask = np.zeros((64, 80), bool)
            mask[y0:y0 + 24, x0:x0 + 22] = True
            image[mask] = color
            objects.append((label, mask))
        samples.append(Sample(image, objects, i))
    return samples
