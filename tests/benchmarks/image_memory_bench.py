"""Peak memory of the ml pipeline's stages on one big photo (tiny models: the figures are the
pipeline's own arrays, not the weights).

Run: .venv/bin/python tests/benchmarks/image_memory_bench.py [--height 3000 --width 4000] [--config var/tiny-models/config.json]
Prints, per stage (detect, segment, embed), the peak RSS above the stage's start and what it kept.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--config", default=str(ROOT / "var" / "tiny-models" / "config.json"))
    args = parser.parse_args()
    from ml import _torchvision_compat

    _torchvision_compat.install()
    import cv2
    import psutil

    from ml.config import PipelineConfig
    from ml.pipeline import Pipeline
    from ml.tiny import synthetic_image

    pipeline = Pipeline.from_config(PipelineConfig.from_file(args.config))
    process, peak, stop = psutil.Process(), [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    image = cv2.resize(synthetic_image(7, h=480, w=640), (args.width, args.height), interpolation=cv2.INTER_NEAREST)
    figures = {}

    def measured(name, fn):
        def run(*a, **k):
            start = process.memory_info().rss
            peak[0] = start
            out = fn(*a, **k)
            figures[name] = ((peak[0] - start) / 1e6, (process.memory_info().rss - start) / 1e6)
            return out
        return run

    engine = pipeline.engine
    engine.detector.detect = measured("detect", engine.detector.detect)
    engine.segmenter.segment_batch = measured("segment", engine.segmenter.segment_batch)
    pipeline.embedder.embed = measured("embed", pipeline.embedder.embed)
    started = time.perf_counter()
    result = pipeline.annotate([image], None, prompts=pipeline.cfg.detector.prompts)[0]
    stop.set()
    print(f"image {args.width}x{args.height} ({image.nbytes / 1e6:.0f} MB RGB), {len(result.detections)} objects, "
          f"{time.perf_counter() - started:.2f} s")
    for name, (high, kept) in figures.items():
        print(f"{name:8s} peak +{high:.0f} MB, kept +{kept:.0f} MB")


if __name__ == "__main__":
    main()
