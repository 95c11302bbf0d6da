"""Gallery of exemplar embeddings: many exemplars per class, each with an id."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ml.errors import missing_path
from ml.inputs import ImageInputError
from ml.vectors import l2_normalize

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Gallery:
    embeddings: np.ndarray  # [M, D] float32, L2-normalised
    labels: list[str]  # class of each exemplar
    exemplar_ids: list[Any] = field(default_factory=list)  # backend ids or file names
    version: str = ""  # embedder_version the embeddings were computed with
    root: str | None = None  # from_dir's folder: exemplar ids are file paths relative to it

    def __post_init__(self):
        self.embeddings = l2_normalize(np.asarray(self.embeddings, np.float32).reshape(len(self.labels), -1)) \
            if len(self.labels) else np.zeros((0, 0), np.float32)
        self.labels = [str(l) for l in self.labels]
        ids = self.exemplar_ids
        self.exemplar_ids = list(range(len(self.labels))) if ids is None or len(ids) == 0 else list(ids)
        if len(self.exemplar_ids) != len(self.labels):
            raise ValueError("gallery: exemplar_ids and labels differ in length")
        self.classes = list(dict.fromkeys(self.labels))  # first-seen order, stable
        pos = {c: i for i, c in enumerate(self.classes)}
        self.class_index = np.array([pos[l] for l in self.labels], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def exemplar_file(self, exemplar_id) -> Path | None:
        """The image file of an exemplar of a gallery read by ``from_dir`` (None otherwise)."""
        if self.root is None or exemplar_id is None:
            return None
        f = Path(self.root) / str(exemplar_id)
        return f if f.is_file() else None

    @staticmethod
    def scan_dir(path: str | os.PathLike) -> list[tuple[str, Path]]:
        """(class, file) pairs. ImageFolder layout (one sub-folder per class) if the
        folder has sub-folders with images, else flat: class = file stem (seed 000)."""
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"gallery folder {str(root)!r} {missing_path(root, 'folder')}")
        subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        items: list[tuple[str, Path]] = []
        # Regular files only, as --images reads: a named pipe called 'x.png' blocked the read for ever.
        for d in subdirs:
            items += [(d.name, f) for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_EXTS and f.is_file()]
        if not items:
            items = [(f.stem, f) for f in sorted(root.iterdir()) if f.suffix.lower() in IMAGE_EXTS and f.is_file()]
        return items

    @classmethod
    def from_dir(cls, path: str | os.PathLike, embedder: Any, background=(124, 116, 104)) -> "Gallery":
        """Embed every exemplar image with ``embedder`` (a Pipeline, or anything with
        ``embed_crops(list[RGB]) -> [N, D]``). RGBA cut-outs are composited on the
        neutral background, like masked crops."""
        import cv2

        from ml.embedders.crops import composite_alpha

        items = cls.scan_dir(path)
        crops = []
        for _, f in items:
            im = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if im is None:  # one error line from the CLI, not a traceback
                raise ImageInputError(f"gallery: cannot read image {str(f)!r} (empty, damaged or not an image "
                                      "file): remove or replace it")
            if im.ndim == 2:
                im = cv2.cvtColor(im, cv2.COLOR_GRAY2RGB)
            elif im.shape[2] == 4:
                im = composite_alpha(cv2.cvtColor(im, cv2.COLOR_BGRA2RGBA), background)
            else:
                im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
            crops.append(im)
        embed: Callable = embedder.embed_crops
        emb = embed(crops) if crops else np.zeros((0, 0), np.float32)
        return cls(emb, [c for c, _ in items], [f.relative_to(path).as_posix() for _, f in items],
                   getattr(embedder, "embedder_version", ""), root=str(path))

    def save(self, path: str | os.PathLike) -> None:
        np.savez(path, embeddings=self.embeddings, labels=np.array(self.labels, dtype=object),
                 exemplar_ids=np.array(self.exemplar_ids, dtype=object), version=self.version)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Gallery":
        z = np.load(path, allow_pickle=True)
        return cls(z["embeddings"], list(z["labels"]), list(z["exemplar_ids"]), str(z["version"]))
