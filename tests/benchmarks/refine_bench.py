"""Click-refine latency: cold (first click of an image: read + SAM image encoder + decoder) vs warm
(later clicks: decoder on the cached embedding), in the worker's code path (Segmenter.refine_cached),
over N images at 1024 px and 4000×3000. Without --config it builds the tiny random-weight SAM 2
(ml/tiny.py); with --config it loads a real pipeline config (only its segmenter is used).

    .venv/bin/python -m tests.benchmarks.refine_bench --images 5 --clicks 5
    .venv/bin/python -m tests.benchmarks.refine_bench --config var/models/config.json --device cuda
    .venv/bin/python -m tests.benchmarks.refine_bench --arch configs/sam2.1/sam2.1_hiera_l.yaml --device cuda --dtype bfloat16

--arch builds a packaged SAM 2.1 architecture with random weights (no checkpoint can be fetched here):
the masks mean nothing, but the encoder and decoder do the real model's work, so the timings hold.
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import numpy as np


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def scene(seed: int, h: int, w: int) -> np.ndarray:
    """Shapes on a textured background (enough structure for a real SAM to find objects)."""
    rng = np.random.RandomState(seed)
    img = (rng.rand(h // 8 + 1, w // 8 + 1, 3) * 60 + 90).astype(np.uint8).repeat(8, 0).repeat(8, 1)[:h, :w].copy()
    for _ in range(6):
        x0, y0 = rng.randint(0, w - w // 5), rng.randint(0, h - h // 5)
        img[y0:y0 + h // 6, x0:x0 + w // 6] = rng.randint(0, 255, 3)
    return img


def run(segmenter, sizes, n_images: int, clicks: int) -> list[dict]:
    rows = []
    for h, w in sizes:
        cold, warm = [], []
        for i in range(n_images):
            image = scene(i, h, w)
            rng = np.random.RandomState(100 + i)
            pts = [[float(rng.randint(0, w)), float(rng.randint(0, h))] for _ in range(clicks)]
            labels = [1] + [int(rng.rand() > 0.3) for _ in range(clicks - 1)]
            key = ("bench", h, w, i)
            for k in range(1, clicks + 1):
                _sync(segmenter.device)
                t0 = time.perf_counter()
                _, cached = segmenter.refine_cached(key, lambda: image, pts[:k], labels[:k])
                _sync(segmenter.device)
                ms = (time.perf_counter() - t0) * 1000.0
                (warm if cached else cold).append(ms)
        rows.append({"size": f"{w}x{h}", "cold_ms": statistics.median(cold), "warm_ms": statistics.median(warm),
                     "warm_p95_ms": sorted(warm)[max(0, math.ceil(len(warm) * 0.95) - 1)],
                     "ratio": statistics.median(cold) / statistics.median(warm), "n_cold": len(cold), "n_warm": len(warm)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="pipeline config json (default: build the tiny models)")
    ap.add_argument("--arch", help="packaged sam2 config name, random weights (timing only)")
    ap.add_argument("--dtype", default=None, help="float32 / bfloat16 / float16 (default: the config's)")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: the config's)")
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--clicks", type=int, default=5, help="clicks per image: the first is cold, the rest warm")
    ap.add_argument("--sizes", default="1024x1024,4000x3000", help="WxH list")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)

    import torch

    import ml  # noqa: F401  (the torchvision shim)
    from ml.config import PipelineConfig
    from ml.device import resolve_device
    from ml.embedding_cache import EmbeddingCache
    from ml.segmenter import Segmenter

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.arch:
        from ml.config import SegmenterConfig

        cfg = PipelineConfig()
        cfg.segmenter = SegmenterConfig(config=args.arch, checkpoint=None)
        label = f"{args.arch} (random weights)"
    elif args.config:
        cfg = PipelineConfig.from_file(args.config)
        label = args.config
    else:
        from ml.tiny import build_tiny_models

        cfg = PipelineConfig.from_file(build_tiny_models(tempfile.mkdtemp(prefix="refine-bench-")))
        label = "tiny SAM 2 (random weights)"
    cfg.dtype = args.dtype or cfg.dtype
    device = resolve_device(args.device or cfg.device)
    seg = Segmenter.load(cfg.segmenter, device, cfg.dtype)
    seg.embeddings = EmbeddingCache(max_items=4, max_bytes=4 << 30)
    sizes = [tuple(int(v) for v in s.split("x"))[::-1] for s in args.sizes.split(",")]
    seg.refine_cached(("warmup",), lambda: scene(99, 256, 256), [[10.0, 10.0]], [1])  # lazy init, kernels
    rows = run(seg, sizes, args.images, args.clicks)
    print(f"# refine latency: {label}, device={device}, dtype={cfg.dtype}, torch threads={torch.get_num_threads()}, "
          f"{args.images} images x {args.clicks} clicks per size")
    print(f"{'size':>10} {'cold ms (median)':>17} {'warm ms (median)':>17} {'warm p95':>9} {'cold/warm':>10}")
    for r in rows:
        print(f"{r['size']:>10} {r['cold_ms']:17.1f} {r['warm_ms']:17.2f} {r['warm_p95_ms']:9.2f} {r['ratio']:10.1f}")


if __name__ == "__main__":
    main()
