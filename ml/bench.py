"""``python -m ml bench``: reference path vs batched path on synthetic images.

Without --config the stages are built from their full-size default configs with
random weights (nothing to download): GroundingDINO Swin-T + BERT-base,
SAM 2.1 hiera-t (packaged config), DINOv3 ViT-L/16. ``--quick`` uses smaller
inputs and models so it fits a few minutes on 2 CPU cores (see QUICK below).
"""
from __future__ import annotations

import time

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
                             max_detections=p["boxes"], batch_size=4)
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


def _agree(a, b) -> bool:
    for ra, rb in zip(a, b):
        if len(ra.detections) != len(rb.detections):
            return False
        for da, db in zip(ra.detections, rb.detections):
            if not np.allclose(da.bbox_xyxy, db.bbox_xyxy, atol=1.0) or da.match.label != db.match.label:
                return False
            if mask_iou(da.mask, db.mask) < 0.99:
                return False
    return True


def _stage_ms(results) -> dict[str, float]:
    return {s: float(np.mean([r.timings_ms.get(s, 0.0) for r in results])) for s in STAGES}


def run_bench(device: str = "auto", quick: bool = False, config: str | None = None,
              n_images: int | None = None) -> int:
    from ml.tiny import synthetic_image

    p = dict(QUICK if quick else FULL)
    n = n_images or p["images"]
    dev = resolve_device(device)
    t0 = time.perf_counter()
    pipe = Pipeline.from_config(PipelineConfig.from_env(config)) if config else _random_pipeline(dev, p)
    print(f"built models in {time.perf_counter() - t0:.1f}s on {dev} "
          f"({'config ' + config if config else 'random weights'}; {'quick' if quick else 'full'}: "
          f"{n} images {p['image_hw'][1]}x{p['image_hw'][0]}, gdino edge {p['gdino_edge']}, "
          f"sam2.1 hiera-t 1024, embedder {pipe.embedder_version[:60]}, top {p['boxes']} boxes)")
    h, w = p["image_hw"]
    images = [synthetic_image(i, h, w, n_shapes=6) for i in range(n)]
    ex = [synthetic_image(100 + i, 96, 96) for i in range(10)]
    gallery = Gallery(pipe.embed_crops(ex), [f"class_{i // 2}" for i in range(10)], list(range(10)),
                      pipe.embedder_version)
    pipe.annotate(images[:2], gallery)  # warm-up (allocator, lazy init, batch-2 kernels) outside the timings

    t = time.perf_counter()
    ref = pipe.annotate_reference(images, gallery)
    ref_s = time.perf_counter() - t
    t = time.perf_counter()
    bat = pipe.annotate(images, gallery)
    bat_s = time.perf_counter() - t

    same = _agree(ref, bat)
    for name, res, secs in (("reference", ref, ref_s), ("batched", bat, bat_s)):
        ms = _stage_ms(res)
        print(f"{name:9s}: " + " ".join(f"{k}={v:.0f}ms" for k, v in ms.items())
              + f" | {n / secs:.3f} img/s | {sum(len(r.detections) for r in res)} detections")
    print(f"speedup={ref_s / bat_s:.2f} identical={'true' if same else 'false'} "
          f"ref_img_s={n / ref_s:.3f} batched_img_s={n / bat_s:.3f}")
    return 0 if same else 1
