"""Fine-tune a projection head on embedder features of approved objects (seeds 001/002).

Loss = cross-entropy of a cosine classifier + supervised contrastive (SupCon) on the projected,
L2-normalised features: the classifier pulls classes apart, the metric loss keeps each class
tight so the gallery's nearest-exemplar rule (ml.matcher) profits, down to single instances.
The classifier is thrown away; the head is saved as a numpy MLP (ml.head.Head) so stored
embeddings are re-scored without a model pass.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ml.head import Head
from ml.training.split import stratified_split
from ml.vectors import l2_normalize


@dataclass
class HeadTrainingConfig:
    hidden: int = 256
    epochs: int = 200
    lr: float = 1e-2
    weight_decay: float = 1e-4
    temperature: float = 0.1
    metric_weight: float = 1.0
    batch_size: int = 512
    holdout: float = 0.25
    seed: int = 0


@dataclass
class TrainedHead:
    head: Head
    metrics: dict


class _ResidualMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)  # starts as the identity: training can only move away from it on purpose
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x):
        return F.normalize(x + self.fc2(F.relu(self.fc1(x))), dim=-1)


def supcon_loss(z: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) over L2-normalised ``z``."""
    sim = z @ z.T / temperature
    n = len(z)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, -1e9)
    pos = (y[:, None] == y[None, :]) & ~self_mask
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    has_pos = pos.any(dim=1)
    if not has_pos.any():
        return z.sum() * 0.0
    mean_pos = (log_prob * pos).sum(dim=1)[has_pos] / pos.sum(dim=1)[has_pos]
    return -mean_pos.mean()


def gallery_top1(queries: np.ndarray, query_labels: list, gallery: np.ndarray, gallery_labels: list) -> float | None:
    """The matcher's rule: the class of the most similar exemplar (best over all of a class's
    exemplars, ml.matcher.class_scores). None when there is nothing to score."""
    if len(queries) == 0 or len(gallery) == 0:
        return None
    sims = l2_normalize(queries) @ l2_normalize(gallery).T
    best = sims.argmax(axis=1)
    return float(np.mean([gallery_labels[b] == want for b, want in zip(best, query_labels)]))


def train_head(features: np.ndarray, labels: list[str], cfg: HeadTrainingConfig | None = None, *,
               gallery: tuple[np.ndarray, list[str]] | None = None, meta: dict | None = None,
               progress: Callable[[float], None] | None = None) -> TrainedHead:
    """Train on a stratified split of (features, labels) and score the held-out part with the
    gallery-match rule, before (identity) and after the head. ``gallery`` (exemplar vectors and
    labels) is what held-out objects are matched against; default: the training split."""
    cfg = cfg or HeadTrainingConfig()
    x = l2_normalize(np.asarray(features, np.float32))
    labels = [str(v) for v in labels]
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("training a head needs approved objects of at least two classes")
    train_idx, held_idx = stratified_split(labels, cfg.holdout, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = _ResidualMLP(x.shape[1], cfg.hidden)
    classifier = nn.Linear(x.shape[1], len(classes), bias=False)
    opt = torch.optim.AdamW([*model.parameters(), *classifier.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt = torch.from_numpy(x[train_idx])
    yt = torch.tensor([classes.index(labels[i]) for i in train_idx])
    gen = torch.Generator().manual_seed(cfg.seed)
    last = {}
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(order), cfg.batch_size):
            b = order[s:s + cfg.batch_size]
            z = model(xt[b])
            logits = F.normalize(classifier.weight, dim=-1) @ z.T / cfg.temperature
            ce = F.cross_entropy(logits.T, yt[b])
            metric = supcon_loss(z, yt[b], cfg.temperature)
            loss = ce + cfg.metric_weight * metric
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = {"loss": loss.item(), "ce": ce.item(), "metric": metric.item()}
        if progress and (epoch % 10 == 9 or epoch == cfg.epochs - 1):
            progress((epoch + 1) / cfg.epochs)
    head = Head([model.fc1.weight.detach().numpy(), model.fc2.weight.detach().numpy()],
                [model.fc1.bias.detach().numpy(), model.fc2.bias.detach().numpy()],
                {**(meta or {}), "classes": classes, "config": cfg.__dict__})
    if gallery is not None:
        g_x, g_y = np.asarray(gallery[0], np.float32), [str(v) for v in gallery[1]]
    else:
        g_x, g_y = x[train_idx], [labels[i] for i in train_idx]
    held_y = [labels[i] for i in held_idx]
    metrics = {
        "train_objects": len(train_idx), "heldout_objects": len(held_idx), "classes": len(classes),
        "heldout_top1_identity": gallery_top1(x[held_idx], held_y, g_x, g_y),
        "heldout_top1": gallery_top1(head(x[held_idx]) if held_idx else x[:0], held_y,
                                     head(g_x) if len(g_x) else g_x, g_y),
        "final_loss": last, "seed": cfg.seed, "holdout": cfg.holdout,
    }
    return TrainedHead(head, metrics)
