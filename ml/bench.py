"""``python -m ml bench``: our batched path vs one image/box/crop at a time vs seed 000.

Without --config the stages are built from their full-size default configs with
random weights (nothing to download): GroundingDINO Swin-T + BERT-base,
SAM 2.1 hiera-t (packaged config), DINOv3 ViT-L/16. ``--quick`` uses smaller
inputs and models so it fits a few minutes on 2 CPU cores (see QUICK below).

``--calibrate`` first times a few batch sizes per stage on this device and keeps, per stage,
the fastest (a tie within 5% goes to the smaller size); with ``--config`` it writes them into
that file. The seed-000 section (``--seed000-images``, at ``--seed000-size`` 4000x3000) runs
seed 000's loop (ml/bench_seed000.py) and our path on the same 12 MP images.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ml.config import DetectorConfig, EmbedderConfig, MatcherConfig, PipelineConfig, SegmenterConfig
from ml.device import resolve_device
from ml.gallery import Gallery
from ml.masks import mask_iou
from ml.pipeline import Pipeline
from ml.types import STAGES

QUICK = dict(images=2, image_hw=(240, 320), gdino_edge=320, embedder="vit_small_patch16_dinov3", boxes=4)
FULL = dict(images=8, image_hw=(600, 800), gdino_edge=800, embedder="vit_large_patch16_dinov3", boxes=8)


def _random_pipeline(device: torch.device, p: dict) -> Pipeline:
    """Full-size architectures, random weights, through the same stage classes."""
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection, GroundingDinoImageProcessor, \
        GroundingDinoProcessor, BertTokenizer

    from ml.detector import Detector
    from ml.embedders.timm_dinov3 import TimmEmbedder, create_timm_backbone
    from ml.segmenter import Segmenter, build_sam2_model
    from ml.tiny import TINY_VOCAB

    torch.manual_seed(0)
    # very low box threshold + top-N: random weights rarely clear a real threshold,
    # and SAM / the embedder need boxes to have work.
    det_cfg = DetectorConfig(model="<random>", prompts=["tool"], box_threshold=0.0, text_threshold=0.0,
                             max_detections=p["boxes"])
    gd = GroundingDinoForObjectDetection(GroundingDinoConfig()).eval()  # Swin-T + BERT-base defaults
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(TINY_VOCAB)}, do_lower_case=True)  # no hub vocab offline
    e = p["gdino_edge"]
    proc = GroundingDinoProcessor(GroundingDinoImageProcessor(size={"shortest_edge": e, "longest_edge": e}), tok)
    seg_cfg = SegmenterConfig(config="configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint=None)
    emb_cfg = EmbedderConfig(kind="timm", model=p["embedder"], pretrained=False, input_size=224)
    det = Detector(gd.to(device), proc, det_cfg, device)
    seg = Segmenter(build_sam2_model(seg_cfg.config, None, device), seg_cfg, device)
    emb = TimmEmbedder(create_timm_backbone(emb_cfg.model, None, False, {}, "token"), emb_cfg, device)
    cfg = PipelineConfig(device=str(device), detector=det_cfg, segmenter=seg_cfg, embedder=emb_cfg,
                         matcher=MatcherConfig(unknown_threshold=0.0, unique_per_image=False))
    from ml.matcher import Matcher
    return Pipeline(cfg, det, seg, emb, Matcher.from_config(cfg.matcher))


def _agreement(a, b) -> float:
    """Fraction of detections that match in order (box within 1 px, same class, mask IoU ≥ 0.99).
    On CUDA, batched and single kernels round differently; with random weights many scores are
    near ties, so a few boxes or classes swap: the fraction says how many."""
    total = same = 0
    for ra, rb in zip(a, b):
        total += max(len(ra.detections), len(rb.detections))
        for da, db in zip(ra.detections, rb.detections):
            same += bool(np.allclose(da.bbox_xyxy, db.bbox_xyxy, atol=1.0) and da.match.label == db.match.label
                         and mask_iou(da.mask, db.mask) >= 0.99)
    return 1.0 if total == 0 else same / total


def _stage_ms(results) -> dict[str, float]:
    return {s: float(np.mean([r.timings_ms.get(s, 0.0) for r in results])) for s in STAGES}


# Candidate sizes for --calibrate; a tie within CALIBRATE_TIE of the fastest goes to the smaller
# size (less memory, and 1 is the reference path's own shape).
IMAGE_BATCHES = (1, 2, 4)
CROP_BATCHES = (1, 4, 8, 16, 32)
CALIBRATE_TIE = 0.05


def _best_of(fn, repeats: int = 2) -> float:
    """Fastest of ``repeats`` runs: the first one also pays for this shape's warm-up."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _pick(timings: dict[int, float]) -> int:
    fastest = min(timings.values())
    return min(b for b, t in timings.items() if t <= fastest * (1 + CALIBRATE_TIE))


def calibrate(pipe: Pipeline, images: list[np.ndarray], log=print) -> dict[str, int]:
    """Time candidate batch sizes per stage on this device and set the fastest on ``pipe``.
    Each stage is timed on its own inputs (images; the boxes / crops the pipeline makes of them)."""
    from dataclasses import replace

    chosen: dict[str, int] = {}
    n = len(images)
    det_sizes = [b for b in IMAGE_BATCHES if b <= n] or [1]
    times = {}
    for b in det_sizes:
        pipe.detector.cfg = replace(pipe.detector.cfg, batch_size=b)
        times[b] = _best_of(lambda: pipe.detector.detect(images)) / n
    chosen["detector"] = _pick(times)
    log("calibrate detector : " + " ".join(f"bs{b}={t * 1000:.0f}ms/img" for b, t in times.items())
        + f" -> {chosen['detector']}")
    pipe.detector.cfg = replace(pipe.detector.cfg, batch_size=chosen["detector"])
    boxes = [[b.xyxy for b in bs] for bs in pipe.detector.detect(images)]

    times = {}
    for b in det_sizes:
        pipe.segmenter.cfg = replace(pipe.segmenter.cfg, batch_size=b)
        times[b] = _best_of(lambda: pipe.segmenter.segment_batch(images, boxes)) / n
    chosen["segmenter"] = _pick(times)
    log("calibrate segmenter: " + " ".join(f"bs{b}={t * 1000:.0f}ms/img" for b, t in times.items())
        + f" -> {chosen['segmenter']}")
    pipe.segmenter.cfg = replace(pipe.segmenter.cfg, batch_size=chosen["segmenter"])
    masks = pipe.segmenter.segment_batch(images, boxes)
    crops = [pipe._crop(im, m) for im, ms in zip(images, masks) for m in ms]

    times = {}
    for b in [b for b in CROP_BATCHES if b <= max(1, len(crops))]:
        pipe.embedder.batch_size = b
        times[b] = _best_of(lambda: pipe.embedder.embed(crops)) / max(1, len(crops))
    chosen["embedder"] = _pick(times)
    log("calibrate embedder : " + " ".join(f"bs{b}={t * 1000:.1f}ms/crop" for b, t in times.items())
        + f" -> {chosen['embedder']}")
    pipe.embedder.batch_size = chosen["embedder"]
    for stage, b in chosen.items():  # keep the pipeline's own config in step with its stages
        setattr(pipe.cfg, stage, replace(getattr(pipe.cfg, stage), batch_size=b))
    return chosen


def write_batch_sizes(path: str, chosen: dict[str, int]) -> None:
    """Put measured batch sizes into a config file (json or yaml), touching nothing else."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        from omegaconf import OmegaConf
        data = OmegaConf.to_container(OmegaConf.load(p))
    else:
        data = json.loads(p.read_text(encoding="utf-8"))
    for stage, b in chosen.items():
        data.setdefault(stage, {})["batch_size"] = int(b)
    if p.suffix.lower() in (".yaml", ".yml"):
        from omegaconf import OmegaConf
        OmegaConf.save(OmegaConf.create(data), p)
    else:
        p.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _batch_sizes(pipe: Pipeline) -> str:
    from ml import batching

    dev = pipe.segmenter.device
    sizes = {"detector": pipe.detector.cfg.batch_size, "segmenter": pipe.segmenter.cfg.batch_size,
             "embedder": pipe.embedder.batch_size}
    return " ".join(f"{s}={batching.resolve(v, s, dev)}{'(auto)' if v == batching.AUTO else ''}"
                    for s, v in sizes.items())


def _ours_native(pipe: Pipeline, images, names, gallery, out: Path) -> list:
    """Our path as ``python -m ml annotate`` runs it: batched annotate, then predictions.json."""
    from ml import batching
    from ml.formats import to_native

    dev = pipe.segmenter.device
    chunk = max(batching.resolve(pipe.detector.cfg.batch_size, "detector", dev),
                batching.resolve(pipe.segmenter.cfg.batch_size, "segmenter", dev))
    results = []
    for s in range(0, len(images), chunk):
        results += pipe.annotate(images[s:s + chunk], gallery)
    out.write_text(json.dumps(to_native(names, results), ensure_ascii=False), encoding="utf-8")
    return results


def seed000_section(pipe: Pipeline, gallery: Gallery, exemplars: list[np.ndarray], n: int,
                    hw: tuple[int, int]) -> dict:
    """Seed 000's loop, the one-at-a-time reference and our path on the same ``n`` images of
    ``hw`` (4000x3000 by default). Prints seconds per image and both speedups."""
    from ml.bench_seed000 import annotate_seed000, save_exemplars
    from ml.formats import to_native
    from ml.tiny import synthetic_image

    h, w = hw
    images = [_upscale(synthetic_image(500 + i, 240, 320, n_shapes=6), h, w) for i in range(n)]
    names = [f"img_{i:03d}.png" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="seed000-bench-") as tmp:
        tmp = Path(tmp)
        files = save_exemplars(exemplars, gallery.exemplar_ids, tmp / "gallery")
        _ours_native(pipe, images[:1], names[:1], gallery, tmp / "warm.json")  # warm-up at this size
        t = time.perf_counter()
        seed = annotate_seed000(pipe, images, names, gallery, files, tmp / "seed000")
        seed_s = time.perf_counter() - t
        t = time.perf_counter()
        ref = pipe.annotate_reference(images, gallery)  # same output as ours: predictions.json
        (tmp / "reference.json").write_text(json.dumps(to_native(names, ref), ensure_ascii=False), encoding="utf-8")
        ref_s = time.perf_counter() - t
        t = time.perf_counter()
        ours = _ours_native(pipe, images, names, gallery, tmp / "ours.json")
        ours_s = time.perf_counter() - t
    n_det = sum(len(p["detections"]) for p in seed)
    same = n_det == sum(len(r.detections) for r in ours)
    print(f"seed000 section: {n} images {w}x{h}, {n_det} detections "
          f"(seed000 writes debug crops, masks, similarities.json and exemplar copies)")
    for name, secs in (("seed000", seed_s), ("reference", ref_s), ("ours", ours_s)):
        print(f"  {name:9s}: {secs / n:.2f} s/img | {n / secs:.3f} img/s")
    print(f"speedup_vs_reference={ref_s / ours_s:.2f} speedup_vs_seed000={seed_s / ours_s:.2f} "
          f"same_detection_count={'true' if same else 'false'}")
    return {"seed_s": seed_s, "ref_s": ref_s, "ours_s": ours_s, "same": same}


def _upscale(img: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)


def run_bench(device: str = "auto", quick: bool = False, config: str | None = None,
              n_images: int | None = None, calibrate_sizes: bool = False, seed000_images: int = 2,
              seed000_size: tuple[int, int] = (3000, 4000), repeats: int = 2) -> int:
    from ml.tiny import synthetic_image

    p = dict(QUICK if quick else FULL)
    n = n_images or p["images"]
    dev = resolve_device(device)
    t0 = time.perf_counter()
    if config:
        cfg = PipelineConfig.from_env(config)
        cfg.device = str(dev)
        pipe = Pipeline.from_config(cfg)
    else:
        pipe = _random_pipeline(dev, p)
    models = (f"config {config}" if config else
              f"random weights, gdino edge {p['gdino_edge']}, sam2.1 hiera-t 1024, top {p['boxes']} boxes")
    print(f"built models in {time.perf_counter() - t0:.1f}s on {dev} ({models}; {'quick' if quick else 'full'}: "
          f"{n} images {p['image_hw'][1]}x{p['image_hw'][0]}, embedder {pipe.embedder_version[:60]})")
    h, w = p["image_hw"]
    images = [synthetic_image(i, h, w, n_shapes=6) for i in range(n)]
    ex = [synthetic_image(100 + i, 96, 96) for i in range(10)]
    gallery = Gallery(pipe.embed_crops(ex), [f"class_{i // 2}" for i in range(10)], list(range(10)),
                      pipe.embedder_version)
    if calibrate_sizes:
        chosen = calibrate(pipe, images)
        if config:
            write_batch_sizes(config, chosen)
            print(f"wrote batch sizes {chosen} into {config}")
        else:
            print(f"measured batch sizes {chosen}: put them in your config as <stage>.batch_size")
    print(f"batch sizes: {_batch_sizes(pipe)}")
    pipe.annotate(images[:2], gallery)  # warm-up (allocator, lazy init, batch-2 kernels) outside the timings

    # Interleaved, best of `repeats`: on a shared machine a burst of other work then hits both
    # paths alike instead of deciding the speedup.
    ref_s = bat_s = float("inf")
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        ref = pipe.annotate_reference(images, gallery)
        ref_s = min(ref_s, time.perf_counter() - t)
        t = time.perf_counter()
        bat = pipe.annotate(images, gallery)
        bat_s = min(bat_s, time.perf_counter() - t)

    agreement = _agreement(ref, bat)
    same = agreement == 1.0
    for name, res, secs in (("reference", ref, ref_s), ("batched", bat, bat_s)):
        ms = _stage_ms(res)
        print(f"{name:9s}: " + " ".join(f"{k}={v:.0f}ms" for k, v in ms.items())
              + f" | {n / secs:.3f} img/s | {sum(len(r.detections) for r in res)} detections")
    print(f"speedup={ref_s / bat_s:.2f} identical={'true' if same else 'false'} agreement={agreement:.3f} "
          f"ref_img_s={n / ref_s:.3f} batched_img_s={n / bat_s:.3f}")
    if seed000_images > 0:
        seed000_section(pipe, gallery, ex, seed000_images, seed000_size)
    return 0 if same else 1
