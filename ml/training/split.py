"""A stratified held-out split with a fixed seed, shared by both trainings."""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def stratified_split(labels: list, holdout: float = 0.25, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices): per label, ``holdout`` of its items (rounded, at
    least one when it has two or more) are held out; a label seen once stays in training."""
    by_label: dict = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in sorted(by_label, key=str):
        idx = list(by_label[label])
        rng.shuffle(idx)
        k = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(holdout * len(idx))))
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)
