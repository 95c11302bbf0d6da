"""Headless CLI: ``python -m ml annotate | tiny-models | bench``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ml.gallery import IMAGE_EXTS


def read_rgb(path: Path):
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise ValueError(f"cannot read image {str(path)!r}")
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def cmd_annotate(args) -> int:
    from tqdm import tqdm

    from ml import batching
    from ml.config import PipelineConfig
    from ml.formats import to_coco, to_native, write_timings
    from ml.gallery import Gallery
    from ml.pipeline import Pipeline

    cfg = PipelineConfig.from_env(args.config)
    pipe = Pipeline.from_config(cfg)
    gallery = Gallery.from_dir(args.gallery, pipe, cfg.embedder.background) if args.gallery else None
    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in IMAGE_EXTS)
    names, results = [], []
    # images handed to one annotate() call: enough to fill the largest image-stage batch
    chunk = max(batching.resolve(getattr(cfg, s).batch_size, s, pipe.segmenter.device) for s in ("detector", "segmenter"))
    with tqdm(total=len(files), desc="annotate", unit="img", file=sys.stderr) as bar:
        for s in range(0, len(files), chunk):
            batch = files[s:s + chunk]
            results += pipe.annotate([read_rgb(f) for f in batch], gallery, args.prompt or None)
            names += [f.name for f in batch]
            bar.update(len(batch))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = to_native(names, results) if args.format == "native" else to_coco(names, results)
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    write_timings(out.parent / "timings.csv", names, results)
    n_det = sum(len(r.detections) for r in results)
    print(f"wrote {out} ({args.format}, {len(files)} images, {n_det} detections) and {out.parent / 'timings.csv'}")
    return 0


def cmd_tiny(args) -> int:
    from ml.tiny import TINY_WARNING, build_tiny_models

    cfg = build_tiny_models(args.out)
    print(f"WARNING: {TINY_WARNING}")
    print(f"config: {cfg}  (variants: config_head.json, config_onnx.json)")
    print(f"use: python -m ml annotate --config {cfg} --images DIR --gallery DIR --out predictions.json")
    return 0


def cmd_bench(args) -> int:
    from ml.bench import run_bench

    try:
        w, h = (int(v) for v in args.seed000_size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--seed000-size: {args.seed000_size!r} must look like 4000x3000 (width x height)")
    return run_bench(device=args.device, quick=args.quick, config=args.config, n_images=args.images,
                     calibrate_sizes=args.calibrate, seed000_images=args.seed000_images, seed000_size=(h, w),
                     repeats=args.repeats)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml", description="Razmetka pre-annotation engine")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("annotate", help="detect, segment, embed and match a folder of images")
    a.add_argument("--images", required=True, help="folder of images")
    a.add_argument("--gallery", help="exemplar folder: flat (class = file stem) or one sub-folder per class")
    a.add_argument("--out", required=True, help="output json; timings.csv is written next to it")
    a.add_argument("--format", choices=["native", "coco"], default="native")
    a.add_argument("--config", help="config json/yaml (default: env RAZMETKA_ML_CONFIG, else built-in)")
    a.add_argument("--prompt", action="append", help="detector text prompt (repeatable; default from config)")
    a.set_defaults(func=cmd_annotate)
    t = sub.add_parser("tiny-models", help="write tiny random-weight models + a config (meaningless output)")
    t.add_argument("--out", required=True)
    t.set_defaults(func=cmd_tiny)
    b = sub.add_parser("bench", help="reference vs batched path: agreement and speed")
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    b.add_argument("--quick", action="store_true", help="smaller models/images to fit a few minutes on CPU")
    b.add_argument("--config", help="use these (real) models instead of random full-size defaults")
    b.add_argument("--images", type=int, default=None, help="number of synthetic images")
    b.add_argument("--calibrate", action="store_true",
                   help="time a few batch sizes per stage on this device, use the fastest and write them "
                        "into --config")
    b.add_argument("--seed000-images", type=int, default=2,
                   help="images for the seed-000 comparison (0 = skip it)")
    b.add_argument("--repeats", type=int, default=2,
                   help="reference and batched runs, interleaved; the best of each is reported")
    b.add_argument("--seed000-size", default="4000x3000", help="WxH of the seed-000 comparison's images")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
