"""Embedder interface: crops in, L2-normalised float32 features out."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml import batching
from ml.vectors import l2_normalize  # noqa: F401  (re-exported)


@dataclass
class EmbedOutput:
    features: np.ndarray  # [N, D] float32, L2-normalised
    probs: np.ndarray | None = None  # [N, C] class probabilities, if the model has them
    class_names: list[str] = field(default_factory=list)


class Embedder:
    """Base class. Subclasses implement ``_embed_batch`` over already square-resized crops."""

    version: str = "embedder"
    dim: int = 0
    batch_size: int | str = "auto"  # see ml/batching.py

    def embed(self, crops: list[np.ndarray]) -> EmbedOutput:
        feats, probs = [], []
        bs = batching.resolve(self.batch_size, "embedder", getattr(self, "device", None))
        for s in range(0, len(crops), bs):
            f, p = self._embed_batch(crops[s:s + bs])
            feats.append(f)
            if p is not None:
                probs.append(p)
        if not feats:
            return EmbedOutput(np.zeros((0, self.dim), np.float32), None, self.class_names)
        return EmbedOutput(l2_normalize(np.concatenate(feats)),
                           np.concatenate(probs).astype(np.float32) if probs else None, self.class_names)

    class_names: list[str] = []

    @property
    def crop_size(self) -> int | None:
        """The square side crops are resized to (square_resize), when the embedder does that:
        the pipeline then shrinks each crop as soon as it is cut, instead of holding every
        full-size crop of a chunk (a 100 MP photo's crops took gigabytes, black-box round 16)."""
        tensorize = getattr(self, "tensorize", None)
        return getattr(tensorize, "size", None)

    def _embed_batch(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


def file_fingerprint(path: str | None) -> str:
    """Cheap stable id of a weights file (size + sha1 of its first and last MiB),
    so a replaced checkpoint changes ``embedder_version`` and invalidates caches."""
    import hashlib
    import os

    if not path or not os.path.isfile(path):
        return "none"
    size = os.path.getsize(path)
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > (2 << 20):
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:12]
