"""An LRU of SAM image embeddings inside one worker process, for click-to-refine.

Encoding the image is almost all of a SAM call (the decoder is a few ms), so a worker keeps the
encoder's output for the images people are clicking on: the next click on the same image only
runs the prompt encoder and the mask decoder. Entries are bounded by count AND bytes (a SAM 2
hiera-L entry is ~16 MB; a 1024-px tiny one a few KB). Keys carry the image's content fingerprint
so a replaced file never reuses a stale embedding. Django-free; one cache per Segmenter.

The entry is an opaque mapping of tensors (whatever the model's image encoder produced): SAM 2's
``{"image_embed", "high_res_feats"}`` today; SAM 3's tracker takes the same kind of backbone
features, so an engine for it can keep its own entries here under its own key prefix.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Hashable

import torch

DEFAULT_MAX_ITEMS = int(os.environ.get("RAZMETKA_EMBED_CACHE_ITEMS", "32"))
DEFAULT_MAX_BYTES = int(float(os.environ.get("RAZMETKA_EMBED_CACHE_MB", "1024")) * 2**20)


def tensor_bytes(value: Any) -> int:
    """Bytes held by the tensors in a (nested) dict/list/tuple."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


@dataclass
class CachedEmbedding:
    features: Any
    orig_hw: tuple[int, int]
    nbytes: int


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    encodes: int = 0  # image-encoder runs made on behalf of the cache (misses that encoded)
    evictions: int = 0
    extra: dict = field(default_factory=dict)


class EmbeddingCache:
    """LRU by count and bytes. An entry larger than ``max_bytes`` is not kept at all."""

    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_items < 0 or max_bytes < 0:
            raise ValueError("embedding cache bounds must be >= 0")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, CachedEmbedding] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # a threaded worker pool may share one Segmenter
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self._bytes

    def keys(self) -> list:
        """Oldest first."""
        return list(self._items)

    def get(self, key: Hashable) -> CachedEmbedding | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return entry

    def put(self, key: Hashable, features: Any, orig_hw: tuple[int, int]) -> CachedEmbedding:
        entry = CachedEmbedding(features=features, orig_hw=(int(orig_hw[0]), int(orig_hw[1])), nbytes=tensor_bytes(features))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if entry.nbytes > self.max_bytes or self.max_items == 0:
                return entry  # usable now, but never kept
            self._items[key] = entry
            self._bytes += entry.nbytes
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
                self.stats.evictions += 1
            return entry

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
