"""Black-box round 16 (ml): a job over 100 MP photos took ~2 GB of a worker per image with the tiny
models. SAM's masks are upscaled a few at a time (all of them at once were N float32 images) and
each crop is shrunk to the embedder's square as soon as it is cut (a chunk held every full-size
crop). Both must give exactly what they gave before; the memory is measured by
tests/benchmarks/image_memory_bench.py."""
from __future__ import annotations

import numpy as np
import torch


def test_masks_upscaled_a_few_at_a_time_are_the_masks_upscaled_at_once(pipeline, monkeypatch):
    from ml import segmenter as segmenter_module

    seg = pipeline.segmenter
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    seg.set_image(image)
    logits = torch.from_numpy(rng.normal(0, 3, (5, 1, 64, 64)).astype(np.float32))
    hw = (300, 400)
    at_once = (seg.predictor._transforms.postprocess_masks(logits, hw)[:, 0] > seg.predictor.mask_threshold).numpy()
    monkeypatch.setattr(segmenter_module, "UPSCALE_BYTES", 2 * 4 * 300 * 400)  # two masks a step
    stepped = seg._upscaled(logits, hw)
    assert stepped.dtype == bool and stepped.shape == (5, 300, 400)
    assert np.array_equal(stepped, at_once)


def test_crops_shrunk_when_cut_embed_as_the_full_size_crops(pipeline):
    from ml.embedders.crops import make_crop, square_resize

    rng = np.random.default_rng(4)
    image = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
    mask = np.zeros((600, 800), bool)
    mask[100:500, 50:700] = True
    e = pipeline.cfg.embedder
    full = make_crop(image, [50, 100, 700, 500], mask, e.crop_mode, e.background, e.crop_padding)
    size = pipeline.embedder.crop_size
    assert size is not None
    shrunk = square_resize(full, size, e.background)
    assert np.array_equal(pipeline.embed_crops([full]), pipeline.embed_crops([shrunk]))
