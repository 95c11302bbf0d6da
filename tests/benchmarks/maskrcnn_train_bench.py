"""Peak memory and time of a few Mask R-CNN training steps on photo-sized images, on this machine.

Run: .venv/bin/python tests/benchmarks/maskrcnn_train_bench.py [--steps 2] [--arch resnet50_fpn] [--rois 64 --proposals 300]
Random pixels and square masks (3 images of 1600x1200, 10 objects each): the point is the memory
of the mask targets and the step time, which a CPU worker must fit in its time limit.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--arch", default="resnet50_fpn")
    parser.add_argument("--rois", type=int, default=None)
    parser.add_argument("--proposals", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from ml.training.maskrcnn import MaskRCNNTrainingConfig, Sample, train_maskrcnn

    rng = np.random.default_rng(0)
    samples = []
    for i in range(3):
        image = rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)
        objects = []
        for k in range(10):
            mask = np.zeros((1200, 1600), bool)
            x, y = rng.integers(0, 1400), rng.integers(0, 1000)
            mask[y:y + 150, x:x + 150] = True
            objects.append((["hammer", "wrench"][k % 2], mask))
        samples.append(Sample(image, objects, i))
    cfg = MaskRCNNTrainingConfig(arch=args.arch, steps=args.steps, rois_per_image=args.rois, rpn_proposals=args.proposals)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        train_maskrcnn(samples, Path(out) / "checkpoint", cfg, device=args.device)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"arch={args.arch} steps={args.steps} rois={args.rois} proposals={args.proposals} device={args.device}: "
          f"{seconds:.1f} s (training, saving, scoring the held-out image), peak RSS {peak_mb} MB")


if __name__ == "__main__":
    main()
