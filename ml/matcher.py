"""Cosine matching of crop embeddings against every gallery exemplar.

Pure numpy (+ scipy for the assignment): the backend re-scores stored crop
embeddings against a changed gallery with it, no torch model needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ml.config import MatcherConfig
from ml.vectors import l2_normalize
from ml.gallery import Gallery
from ml.types import MatchResult

UNKNOWN = "unknown"


@dataclass
class ClassScores:
    scores: np.ndarray  # [N, C] best exemplar similarity per class
    best_exemplar: np.ndarray  # [N, C] index into the gallery of that exemplar
    classes: list[str]


def class_scores(embeddings: np.ndarray, gallery: Gallery) -> ClassScores:
    """Per class, the best similarity over ALL its exemplars (not a class mean:
    a tool photographed from two sides has two unlike exemplars)."""
    e = l2_normalize(np.asarray(embeddings, np.float32).reshape(len(embeddings), -1))
    sims = e @ gallery.embeddings.T  # [N, M]
    classes = gallery.classes
    n, c = len(e), len(classes)
    scores = np.full((n, c), -np.inf, dtype=np.float32)
    best = np.zeros((n, c), dtype=np.int64)
    cls_idx = gallery.class_index  # [M]
    for k in range(c):  # loop over classes (tens), vectorised over objects and exemplars
        cols = np.flatnonzero(cls_idx == k)
        sub = sims[:, cols]
        arg = sub.argmax(axis=1) if n else np.zeros(0, np.int64)
        best[:, k] = cols[arg] if n else 0
        scores[:, k] = sub[np.arange(n), arg] if n else 0
    return ClassScores(scores, best, classes)


class Matcher:
    def __init__(self, unknown_threshold: float = 0.5, margin: float = 0.0, top_k: int = 5,
                 unique_per_image: bool = False, min_assign_score: float = 0.0):
        self.unknown_threshold = unknown_threshold
        self.margin = margin
        self.top_k = top_k
        self.unique_per_image = unique_per_image
        self.min_assign_score = min_assign_score

    @classmethod
    def from_config(cls, cfg: MatcherConfig) -> "Matcher":
        return cls(cfg.unknown_threshold, cfg.margin, cfg.top_k, cfg.unique_per_image, cfg.min_assign_score)

    def match(self, crop_embeddings: np.ndarray, gallery: Gallery) -> list[MatchResult]:
        """Crops of ONE image (unique_per_image assigns within the call)."""
        n = len(crop_embeddings)
        if n == 0:
            return []
        if len(gallery) == 0:
            return [MatchResult(UNKNOWN, 0.0, 0.0, []) for _ in range(n)]
        cs = class_scores(crop_embeddings, gallery)
        ids = gallery.exemplar_ids
        return self._decide(cs.scores, cs.classes, lambda i, k: ids[cs.best_exemplar[i, k]])

    def match_probs(self, probs: np.ndarray, class_names: list[str]) -> list[MatchResult]:
        """"Take the class from p" mode of a classifier (seed 001): the same unknown
        threshold / margin / assignment rules on probabilities instead of similarities."""
        p = np.asarray(probs, np.float32).reshape(len(probs), -1)
        if len(p) == 0:
            return []
        return self._decide(p, list(class_names), lambda i, k: None)

    def _decide(self, scores: np.ndarray, classes: list[str], exemplar_of) -> list[MatchResult]:
        n = len(scores)
        order = np.argsort(-scores, axis=1, kind="stable")
        if self.unique_per_image:
            chosen = self._assign(scores)
        else:
            chosen = [int(order[i, 0]) if self._confident(scores[i], order[i]) else None for i in range(n)]
        out = []
        for i in range(n):
            k = chosen[i]
            kk = int(order[i, 0]) if k is None else k  # unknown still reports its best class score
            others = np.delete(scores[i], kk)
            margin = float(scores[i, kk] - (others.max() if len(others) else 0.0))
            ranked = [(classes[j], float(scores[i, j]), exemplar_of(i, j)) for j in order[i, : self.top_k]]
            out.append(MatchResult(UNKNOWN if k is None else classes[k], float(scores[i, kk]), margin, ranked))
        return out

    def _confident(self, row: np.ndarray, order: np.ndarray) -> bool:
        top = row[order[0]]
        second = row[order[1]] if len(order) > 1 else -1.0
        return bool(top >= self.unknown_threshold and top - second >= self.margin)

    def _assign(self, scores: np.ndarray) -> list[int | None]:
        """One object per class per image maximising total similarity. Objects whose
        best class is under the unknown threshold do not compete; objects left
        without a class (more objects than classes, or an assigned score below
        min_assign_score) become unknown rather than being dropped. The top-2
        margin is not applied here: the assignment itself resolves ambiguity."""
        n = len(scores)
        chosen: list[int | None] = [None] * n
        cand = np.flatnonzero(scores.max(axis=1) >= self.unknown_threshold)
        if len(cand) == 0:
            return chosen
        rows, cols = linear_sum_assignment(-scores[cand])
        floor = max(self.min_assign_score, self.unknown_threshold)
        for r, c in zip(rows, cols):
            if scores[cand[r], c] >= floor:
                chosen[int(cand[r])] = int(c)
        return chosen
