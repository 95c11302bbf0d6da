"""Cosine matching of crop embeddings against every gallery exemplar.

Pure numpy (+ scipy for the assignment): the backend re-scores stored crop
embeddings against a changed gallery with it, no torch model needed.

Instances (seed 001: "screwdriver-1234" is one physical screwdriver): a gallery may map
instance labels to their type label (``Gallery.parents``, or ``parents=`` to ``match``). The
type is decided first with every exemplar of the type and of its instances, so adding
instances never costs type accuracy; then the instances of the winning type are ranked among
themselves and one is named only when it clears the same threshold and margin.

Hard negatives (a reviewer said "this crop is not C"): see ``Negatives`` and
``demote_negatives``. A ``transform`` (e.g. a trained projection head) maps crop, exemplar and
negative embeddings into the space similarity is taken in.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ml.config import MatcherConfig
from ml.vectors import l2_normalize
from ml.gallery import Gallery
from ml.types import MatchResult

UNKNOWN = "unknown"


@dataclass
class HierarchicalMatch(MatchResult):
    """A MatchResult of a gallery with instances: ``label`` is the instance when one won, else
    the type (or unknown); ``ranked`` lists types best first, the decided type followed by its
    instances."""
    type_label: str = UNKNOWN
    instance_label: str | None = None


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


@dataclass
class Negatives:
    """Crops a reviewer moved away from a class: ``labels[i]`` is the class crop i is NOT."""
    embeddings: np.ndarray  # [K, D]
    labels: list[str]

    def __post_init__(self):
        self.labels = [str(l) for l in self.labels]
        self.embeddings = l2_normalize(np.asarray(self.embeddings, np.float32).reshape(len(self.labels), -1)) \
            if len(self.labels) else np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self.labels)


def demote_negatives(cs: ClassScores, embeddings: np.ndarray, negatives: Negatives) -> None:
    """In place: score_C -= max(0, max_n sim(x, n) - score_C) over the negatives n of class C.

    Why this rule rather than "drop C when a negative is the nearest neighbour": it is
    continuous (no flip on a 0.001 difference) and it is exactly zero for every crop that is at
    least as close to C's best positive exemplar as to any negative of C, so crops unlike the
    corrected one keep their scores bit for bit. A crop as close to the negative as the
    corrected crop was loses as much as it leans towards it (sim 1.0 to the negative, 0.8 to
    C: 0.8 -> 0.6), and a learned exemplar of the right class usually outranks C anyway."""
    if not len(negatives) or not cs.classes:
        return
    e = l2_normalize(np.asarray(embeddings, np.float32).reshape(len(embeddings), -1))
    sims = e @ negatives.embeddings.T  # [N, K]
    neg_labels = np.asarray(negatives.labels)
    for k, label in enumerate(cs.classes):
        cols = np.flatnonzero(neg_labels == label)
        if len(cols):
            worst = sims[:, cols].max(axis=1)
            cs.scores[:, k] -= np.maximum(0.0, worst - cs.scores[:, k])


class Matcher:
    def __init__(self, unknown_threshold: float = 0.5, margin: float = 0.0, top_k: int = 5,
                 unique_per_image: bool = False, min_assign_score: float = 0.0,
                 negatives: Negatives | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None):
        """``negatives``: hard negatives (default: the gallery's ``negatives`` attribute, if any,
        as ``parents``). ``transform``: maps [N, D] embeddings to [N, D'] before similarity
        (crops, exemplars and negatives alike); None is the identity."""
        self.unknown_threshold = unknown_threshold
        self.margin = margin
        self.top_k = top_k
        self.unique_per_image = unique_per_image
        self.min_assign_score = min_assign_score
        self.negatives = negatives
        self.transform = transform

    def with_negatives(self, embeddings: np.ndarray, labels: Sequence[str]) -> "Matcher":
        """A copy of this matcher that also demotes classes near these negatives."""
        other = copy.copy(self)
        other.negatives = Negatives(np.asarray(embeddings, np.float32), list(labels))
        return other

    def _transformed(self, crop_embeddings: np.ndarray, gallery: Gallery, negatives: Negatives | None):
        if self.transform is None:
            return crop_embeddings, gallery, negatives
        t = self.transform
        moved = Gallery(t(gallery.embeddings), gallery.labels, gallery.exemplar_ids, gallery.version)
        if hasattr(gallery, "parents"):
            moved.parents = gallery.parents
        if negatives is not None and len(negatives):
            negatives = Negatives(t(negatives.embeddings), negatives.labels)
        return t(np.asarray(crop_embeddings, np.float32)), moved, negatives

    @classmethod
    def from_config(cls, cfg: MatcherConfig) -> "Matcher":
        return cls(cfg.unknown_threshold, cfg.margin, cfg.top_k, cfg.unique_per_image, cfg.min_assign_score)

    def match(self, crop_embeddings: np.ndarray, gallery: Gallery,
              parents: Mapping[str, str] | None = None) -> list[MatchResult]:
        """Crops of ONE image (unique_per_image assigns within the call). ``parents`` maps an
        instance label to its type label (default: the gallery's ``parents``, if it has one)."""
        n = len(crop_embeddings)
        if n == 0:
            return []
        if len(gallery) == 0:
            return [MatchResult(UNKNOWN, 0.0, 0.0, []) for _ in range(n)]
        negatives = self.negatives if self.negatives is not None else getattr(gallery, "negatives", None)
        crop_embeddings, gallery, negatives = self._transformed(crop_embeddings, gallery, negatives)
        cs = class_scores(crop_embeddings, gallery)
        if negatives is not None:
            demote_negatives(cs, crop_embeddings, negatives)
        ids = gallery.exemplar_ids
        exemplar_of = lambda i, k: ids[cs.best_exemplar[i, k]]  # noqa: E731
        parents = {str(k): str(v) for k, v in (parents if parents is not None else getattr(gallery, "parents", None) or {}).items()}
        if not any(c in parents for c in cs.classes):  # no instance in this gallery: flat classes
            return self._decide(cs.scores, cs.classes, exemplar_of)
        return self._decide_hierarchy(cs.scores, cs.classes, exemplar_of, parents)

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

    def _decide_hierarchy(self, scores: np.ndarray, classes: list[str], exemplar_of, parents: dict[str, str]) -> list[MatchResult]:
        n = len(scores)
        types = list(dict.fromkeys(parents.get(c, c) for c in classes))
        type_of = np.array([types.index(parents.get(c, c)) for c in classes])
        # A type scores its best exemplar among its own and all its instances' exemplars.
        members = [np.flatnonzero(type_of == t) for t in range(len(types))]
        best_col = np.stack([m[scores[:, m].argmax(axis=1)] for m in members], axis=1)  # [N, T]
        tscores = np.take_along_axis(scores, best_col, axis=1)
        instances = [[k for k in m if classes[k] in parents] for m in members]
        torder = np.argsort(-tscores, axis=1, kind="stable")
        if self.unique_per_image:
            # A type with instances may appear many times (two different screwdrivers); its
            # instances are what is unique. A type without instances stays one per image.
            chosen_t = self._assign(tscores, repeat=[n if inst else 1 for inst in instances])
        else:
            chosen_t = [int(torder[i, 0]) if self._confident(tscores[i], torder[i]) else None for i in range(n)]
        chosen_i = self._choose_instances(scores, chosen_t, instances)
        out = []
        for i in range(n):
            t = chosen_t[i]
            tt = int(torder[i, 0]) if t is None else t
            others = np.delete(tscores[i], tt)
            tmargin = float(tscores[i, tt] - (others.max() if len(others) else 0.0))
            ranked = []
            for j in torder[i, : self.top_k]:
                ranked.append((types[j], float(tscores[i, j]), exemplar_of(i, int(best_col[i, j]))))
                if j == tt:  # the decided type's instances, best first, right under it
                    inst = sorted(instances[j], key=lambda k: -scores[i, k])[: self.top_k]
                    ranked += [(classes[k], float(scores[i, k]), exemplar_of(i, k)) for k in inst]
            k = chosen_i[i]
            if k is not None:
                rest = [scores[i, o] for o in instances[tt] if o != k]
                margin = float(scores[i, k] - (max(rest) if rest else 0.0))
                out.append(HierarchicalMatch(classes[k], float(scores[i, k]), margin, ranked, types[tt], classes[k]))
            else:
                label = UNKNOWN if t is None else types[t]
                out.append(HierarchicalMatch(label, float(tscores[i, tt]), tmargin, ranked, label, None))
        return out

    def _choose_instances(self, scores: np.ndarray, chosen_t: list[int | None], instances: list[list[int]]) -> list[int | None]:
        """Per object of a type with instances, the instance it is, or None (the type only)."""
        chosen: list[int | None] = [None] * len(scores)
        for t, cols in enumerate(instances):
            objs = [i for i, c in enumerate(chosen_t) if c == t]
            if not cols or not objs:
                continue
            sub = scores[np.ix_(objs, cols)]
            if self.unique_per_image:  # one physical object cannot be in a photo twice
                picks = self._assign(sub)
                taken = {p for p in picks if p is not None}
                for r, pick in enumerate(picks):
                    # Name an instance only when it beats, by the margin, every instance no other
                    # object took: a lone object equally like two screwdrivers stays the type.
                    free = [c for c in range(len(cols)) if c != pick and c not in taken]
                    if pick is not None and free and sub[r, pick] - sub[r, free].max() < self.margin:
                        picks[r] = None
            else:
                order = np.argsort(-sub, axis=1, kind="stable")
                picks = [int(order[r, 0]) if self._confident(sub[r], order[r]) else None for r in range(len(objs))]
            for obj, pick in zip(objs, picks):
                chosen[obj] = None if pick is None else cols[pick]
        return chosen

    def _confident(self, row: np.ndarray, order: np.ndarray) -> bool:
        top = row[order[0]]
        second = row[order[1]] if len(order) > 1 else -1.0
        return bool(top >= self.unknown_threshold and top - second >= self.margin)

    def _assign(self, scores: np.ndarray, repeat: list[int] | None = None) -> list[int | None]:
        """One object per class per image maximising total similarity. Objects whose
        best class is under the unknown threshold do not compete; objects left
        without a class (more objects than classes, or an assigned score below
        min_assign_score) become unknown rather than being dropped. The top-2
        margin is not applied here: the assignment itself resolves ambiguity. ``repeat[c]``
        lets column c take that many objects (default one each)."""
        n = len(scores)
        chosen: list[int | None] = [None] * n
        cand = np.flatnonzero(scores.max(axis=1) >= self.unknown_threshold)
        if len(cand) == 0:
            return chosen
        col_of = np.arange(scores.shape[1]) if repeat is None else np.repeat(np.arange(scores.shape[1]), repeat)
        rows, cols = linear_sum_assignment(-scores[cand][:, col_of])
        floor = max(self.min_assign_score, self.unknown_threshold)
        for r, c in zip(rows, cols):
            if scores[cand[r], col_of[c]] >= floor:
                chosen[int(cand[r])] = int(col_of[c])
        return chosen
