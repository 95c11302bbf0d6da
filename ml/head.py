"""A trained projection head applied to stored crop/gallery embeddings with numpy (issue 15).

Re-scoring multiplies stored vectors, so the head must run without a model pass: a small
MLP saved as ``.npz`` (``w0, b0, w1, b1, ...`` plus a JSON ``meta``), ReLU between layers, and
the input added back (a residual: an untrained head is close to the identity). Output is
L2-normalised, like every embedding the matcher sees. Django-free.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ml.vectors import l2_normalize


class Head:
    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], meta: dict | None = None):
        if not weights or len(weights) != len(biases):
            raise ValueError("a head needs one bias per weight matrix")
        self.weights = [np.asarray(w, np.float32) for w in weights]
        self.biases = [np.asarray(b, np.float32) for b in biases]
        self.meta = dict(meta or {})
        self.dim_in = int(self.weights[0].shape[1])
        self.dim = int(self.weights[-1].shape[0])
        if self.dim != self.dim_in:
            raise ValueError(f"a residual head maps {self.dim_in}-d to the same size, not {self.dim}-d")

    @property
    def embedder_version(self) -> str:
        """The embedder whose features it was trained on (its vectors mean nothing for another)."""
        return str(self.meta.get("embedder_version", ""))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, np.float32)
        if x.ndim == 1:
            return self(x[None])[0]
        if x.shape[-1] != self.dim_in:
            raise ValueError(f"the head takes {self.dim_in}-d embeddings, got {x.shape[-1]}-d "
                             "(it was trained for another embedder)")
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return l2_normalize(x + h)

    def to_bytes(self) -> bytes:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)} | {f"b{i}": b for i, b in enumerate(self.biases)}
        out = io.BytesIO()
        np.savez(out, meta=np.array(json.dumps(self.meta)), **arrays)
        return out.getvalue()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, data: bytes) -> "Head":
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            n = sum(1 for k in z.files if k.startswith("w"))
            return cls([z[f"w{i}"] for i in range(n)], [z[f"b{i}"] for i in range(n)], json.loads(str(z["meta"])))
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"not a projection-head file ({exc})") from exc

    @classmethod
    def load(cls, path: str | Path) -> "Head":
        return cls.from_bytes(Path(path).read_bytes())
