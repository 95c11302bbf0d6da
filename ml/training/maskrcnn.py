"""Fine-tune a torchvision Mask R-CNN on approved masks (seed 002's closed-set model).

Samples are images with their approved objects; a stratified split by image (keyed on each
image's most common label) holds some out, the held-out images are scored with ml.evaluation,
and the checkpoint is written by ml.maskrcnn_model.save_checkpoint. Django-free.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ml import evaluation
from ml.errors import TrainingRefused

PROGRESS_EVERY_S = 5.0
from ml.masks import encode_rle
from ml.maskrcnn_model import build_model, load_checkpoint, save_checkpoint
from ml.training.split import stratified_split


@dataclass
class Sample:
    image: np.ndarray  # HxWx3 uint8
    objects: list[tuple[str, np.ndarray]]  # (label, bool HxW mask)
    image_id: int | str = 0


@dataclass
class MaskRCNNTrainingConfig:
    arch: str = "resnet50_fpn"
    min_size: int = 800
    max_size: int = 1333
    steps: int = 200
    batch_size: int = 2
    lr: float = 0.005
    # The learning rate climbs linearly from lr/1000 over the first steps (torchvision's reference
    # recipe) and gradients are clipped: random-weight heads on small images went to NaN at step
    # 8-13 of 20 (black-box round 17), with nothing in the API to change.
    warmup_steps: int = 50
    clip_norm: float = 10.0
    holdout: float = 0.25
    seed: int = 0
    score_threshold: float = 0.05
    init_checkpoint: str | None = None  # a folder from save_checkpoint to start from (same classes)
    # Fewer sampled RoIs / RPN proposals per training image than torchvision's 512 / 2000: much
    # faster steps where roi_align has no compiled kernel (CPU test machines); None = torchvision's.
    rois_per_image: int | None = None
    rpn_proposals: int | None = None
    # Seconds the run may take (the worker's time limit): after the first steps a run that would
    # overshoot stops at once and says how many steps fit, instead of being killed at the limit
    # (a ResNet-50 Mask R-CNN on CPU takes ~50 s a step: 200 steps would need ~3 hours). None: no limit.
    time_budget_s: float | None = None


BUDGET_CHECK_STEPS = 3


@dataclass
class TrainedMaskRCNN:
    path: Path
    spec: dict
    metrics: dict = field(default_factory=dict)


def _target(sample: Sample, class_names: list[str]) -> dict:
    masks = np.stack([m.astype(np.uint8) for _, m in sample.objects])
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return {"boxes": torch.tensor(boxes, dtype=torch.float32),
            "labels": torch.tensor([class_names.index(lab) + 1 for lab, _ in sample.objects], dtype=torch.int64),
            "masks": torch.from_numpy(masks)}


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


@torch.inference_mode()
def predict(model, spec: dict, images: list[np.ndarray], score_threshold: float = 0.05) -> list[list[dict]]:
    """Per image, objects as ml.evaluation predictions (label, score, class_score, mask_rle)."""
    model.eval()
    device = next(model.parameters()).device
    names = spec["class_names"]
    out = []
    for image in images:
        result = model([_tensor(image).to(device)])[0]
        objects = []
        for score, label, mask in zip(result["scores"].tolist(), result["labels"].tolist(), result["masks"]):
            if score < score_threshold:
                continue
            binary = (mask[0] > 0.5).cpu().numpy()
            if not binary.any():
                continue
            objects.append({"label": names[label - 1] if 0 < label <= len(names) else evaluation.UNKNOWN,
                            "score": float(score), "class_score": float(score), "mask_rle": encode_rle(binary)})
        out.append(objects)
    return out


def evaluate_model(model, spec: dict, samples: list[Sample], score_threshold: float = 0.05) -> dict:
    t0 = time.perf_counter()
    preds = predict(model, spec, [s.image for s in samples], score_threshold)
    seconds = time.perf_counter() - t0
    gt = [{"image_id": i, "width": s.image.shape[1], "height": s.image.shape[0],
           "objects": [{"label": lab, "mask_rle": encode_rle(m)} for lab, m in s.objects]} for i, s in enumerate(samples)]
    metrics = evaluation.evaluate(gt, [{"image_id": i, "objects": p} for i, p in enumerate(preds)])
    metrics["seconds_per_image"] = seconds / max(1, len(samples))
    return metrics


def _check_budget(elapsed: float, done: int, cfg: MaskRCNNTrainingConfig, device: str, slack: float = 1.0) -> None:
    """Refuse a training its time limit cannot hold. `slack`: how far over it must be to refuse
    already (one timed step is noisy, but 4,000x over needs no more: the worker was held 5 min)."""
    per_step = elapsed / done
    # Room for saving and scoring the held-out images after the steps.
    fits = int(cfg.time_budget_s * 0.8 / per_step)
    if fits * slack < cfg.steps:
        raise TrainingRefused(
            f"At {per_step:.1f} s a step on {device}, {cfg.steps} steps would take about "
            f"{cfg.steps * per_step / 60:.0f} min; with the time to save and score the model after them (a fifth "
            f"of the budget) that does not fit the worker's limit of {cfg.time_budget_s / 60:.0f} min. Train with "
            f"at most {max(1, fits)} steps, smaller images (min_size, max_size) or on a GPU worker. (Measured over "
            f"{done} step{'s' if done > 1 else ''}.)")


def train_maskrcnn(samples: list[Sample], out_dir: str | Path, cfg: MaskRCNNTrainingConfig | None = None, *,
                   device: str = "cpu", progress: Callable[[float], None] | None = None) -> TrainedMaskRCNN:
    cfg = cfg or MaskRCNNTrainingConfig()
    samples = [s for s in samples if s.objects]
    class_names = sorted({lab for s in samples for lab, _ in s.objects})
    if not class_names or len(samples) < 2:
        raise ValueError("training Mask R-CNN needs at least two images with approved masks")
    key = [Counter(lab for lab, _ in s.objects).most_common(1)[0][0] for s in samples]
    train_idx, held_idx = stratified_split(key, cfg.holdout, cfg.seed)
    if not held_idx:  # every label seen once: still hold one image out, or nothing is measured
        train_idx, held_idx = train_idx[:-1], train_idx[-1:]
    spec = {"arch": cfg.arch, "class_names": class_names, "min_size": cfg.min_size, "max_size": cfg.max_size,
            "weights": None}
    torch.manual_seed(cfg.seed)
    if cfg.init_checkpoint:
        model, old = load_checkpoint(cfg.init_checkpoint, "cpu")
        if old.get("class_names") != class_names or old.get("arch") != cfg.arch:
            raise ValueError("the starting checkpoint has other classes or another architecture")
    else:
        model = build_model(spec)
    if cfg.rois_per_image:
        model.roi_heads.fg_bg_sampler.batch_size_per_image = int(cfg.rois_per_image)
    if cfg.rpn_proposals:
        model.rpn._pre_nms_top_n["training"] = model.rpn._post_nms_top_n["training"] = int(cfg.rpn_proposals)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    started = 0.0
    reported = time.monotonic()
    warmup = min(cfg.warmup_steps, max(1, cfg.steps // 5))
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (0.001 + 0.999 * step / warmup if step < warmup else 1.0)
        batch = [samples[i] for i in rng.choice(train_idx, size=min(cfg.batch_size, len(train_idx)), replace=False)]
        images = [_tensor(s.image).to(device) for s in batch]
        targets = [{k: v.to(device) for k, v in _target(s, class_names).items()} for s in batch]
        loss_dict = model(images, targets)
        loss = sum(loss_dict.values())
        if not torch.isfinite(loss):
            raise TrainingRefused(f"training diverged at step {step} (loss {loss.item()}): train again with a lower "
                                  f"learning rate (lr, {cfg.lr:g} now: try {cfg.lr / 10:g}) or a larger batch_size")
        opt.zero_grad()
        loss.backward()
        if cfg.clip_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
        opt.step()
        losses.append(loss.item())
        if step == 0:
            started = time.perf_counter()  # the first step pays one-off set-up: timed from its end
        elif cfg.time_budget_s and step == 1 and step + 1 < cfg.steps:
            _check_budget(time.perf_counter() - started, step, cfg, device, slack=1 / 3)  # far over: now
        elif cfg.time_budget_s and step + 1 == BUDGET_CHECK_STEPS < cfg.steps:
            _check_budget(time.perf_counter() - started, step, cfg, device)
        # Every 10 steps, and after any step once PROGRESS_EVERY_S have passed: a default ResNet-50 on
        # a CPU takes ~10 s a step, and the run showed 0 % for minutes, like a stuck one.
        if progress and (step % 10 == 9 or step == cfg.steps - 1 or time.monotonic() - reported >= PROGRESS_EVERY_S):
            progress((step + 1) / cfg.steps)
            reported = time.monotonic()
    path = save_checkpoint(model.cpu(), spec, out_dir)
    metrics = evaluate_model(model.to(device), spec, [samples[i] for i in held_idx], cfg.score_threshold)
    metrics.update({"train_images": len(train_idx), "heldout_images": len(held_idx), "steps": cfg.steps,
                    "first_loss": losses[0], "last_loss": losses[-1], "seed": cfg.seed, "arch": cfg.arch,
                    "heldout_indices": held_idx})
    return TrainedMaskRCNN(path, spec, metrics)
