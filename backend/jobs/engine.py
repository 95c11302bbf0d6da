"""The ml pipeline inside a worker process: built once from RAZMETKA_ML_CONFIG and reused."""
from __future__ import annotations

import io
import os
import re
import threading
from collections import OrderedDict

import cv2
import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from backend.core.paths import shown_path
from backend.learning.selectors import ModelUnavailable, head_transform


class EngineNotConfigured(Exception):
    pass


_lock = threading.Lock()
# (config path, mtime, device, engine) -> Pipeline, least recently used first. Projects of
# different engines share a worker: keep the two most recent pipelines, drop older ones.
_cache: OrderedDict[tuple, object] = OrderedDict()
MAX_ALIVE = 2


def config_path() -> str:
    path = settings.RAZMETKA_ML_CONFIG
    if not path:
        raise EngineNotConfigured(
            "Pre-annotation models are not configured: set RAZMETKA_ML_CONFIG to a pipeline config file "
            "(`make models` downloads the default weights and writes var/models/config.json; offline, "
            "`make tiny-models` writes var/tiny-models/config.json for a trial)."
        )
    if not os.path.isfile(path):
        # Members read this on the failed job: the path as shown_path gives it, not the host's layout.
        raise EngineNotConfigured(f"RAZMETKA_ML_CONFIG points at {shown_path(path)!r}, which does not exist.")
    return path


def load_config():
    from ml.config import PipelineConfig

    cfg = PipelineConfig.from_file(config_path())
    cfg.device = settings.RAZMETKA_ML_DEVICE or cfg.device
    return cfg


def get_pipeline(engine: str | None = None, maskrcnn_model: str | None = None):
    """The pipeline of ``engine`` (a project's, frozen in its job's snapshot; None = the config's
    own ``engine``), built once per process and config version. Pipelines of one config share
    their embedder, so gallery vectors are the same whichever engine a project uses.
    ``maskrcnn_model``: a project's trained checkpoint folder instead of the config's."""
    from ml.errors import MLError
    from ml.pipeline import Pipeline

    path = config_path()
    base = (path, os.path.getmtime(path), settings.RAZMETKA_ML_DEVICE)
    with _lock:
        # Jobs name their engine: a cached pipeline is found without reading the config file again.
        cfg = None if engine else load_config()
        name = engine or cfg.engine
        key = (*base, name, maskrcnn_model if name == "maskrcnn" else None)
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        cfg = cfg or load_config()
        if name == "maskrcnn" and maskrcnn_model:
            cfg.maskrcnn.model = maskrcnn_model
        for old in [k for k in _cache if k[:3] != base]:  # the config file changed: drop old builds
            del _cache[old]
        sibling = next(iter(_cache.values()), None)
        try:
            from ml.config import check_engine

            cfg.engine = check_engine(name)
            pipe = Pipeline.from_config(cfg, embedder=sibling.embedder if sibling is not None else None)
        except MLError as exc:  # names the setting to change; the job fails with it, nothing retries
            raise EngineNotConfigured(f"the {name!r} engine cannot run with this worker's models "
                                      f"(RAZMETKA_ML_CONFIG={path}): {exc}") from exc
        _cache[key] = pipe
        while len(_cache) > MAX_ALIVE:
            _cache.popitem(last=False)
        return pipe


def read_rgb(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as fh:
        return decode_rgb(fh.read())


def item_error(exc: BaseException) -> str:
    """An exception as a job item's error: its type and public_text; one written for people (a
    broken model version says which and what to do) as it is."""
    if isinstance(exc, ModelUnavailable):
        return public_text(exc)
    return f"{type(exc).__name__}: {public_text(exc)}"


def public_text(exc: BaseException) -> str:
    """An exception's text for a job item's error: an absolute path shown by its base name (as
    exchange.services.public_message), an object repr ("<… object at 0x…>") by its class."""
    from backend.exchange.services import public_message

    return _REPR.sub(lambda m: f"<{m.group(1)}>", public_message(exc))


_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


# Stored images OpenCV decodes to the same pixels as Pillow, in two thirds of the time (a 12 MP
# JPEG: ~115 ms against ~170 ms here; Pillow's decode is followed by two full copies, convert()
# and asarray()). Both use libjpeg-turbo and libpng; tests/backend/test_decode_rgb.py holds them equal.
_OPENCV_FORMATS = {"JPEG", "MPO", "PNG"}  # MPO: a JPEG with more pictures after it; OpenCV reads the first
_OPENCV_MODES = {"RGB", "L"}  # not CMYK, 16-bit grey, palettes or alpha: those go through Pillow
_OPENCV_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # Pillow does not turn by EXIF either


def decode_rgb(data: bytes) -> np.ndarray:
    """(h, w, 3) uint8 RGB pixels of an image file's bytes, as stored (no EXIF turn: uploads are
    stored upright). Transparent pixels are composited on the neutral background of masked crops."""
    with PILImage.open(io.BytesIO(data)) as img:  # the header only: format, mode, size
        if img.format in _OPENCV_FORMATS and img.mode in _OPENCV_MODES and "transparency" not in img.info:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _OPENCV_FLAGS)
            if pixels is not None and pixels.shape[:2] == (img.height, img.width):
                return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)
        if img.mode.startswith("I") or img.mode == "F":
            # 16/32-bit grey: convert("RGB") clips every value above 255 to white; scale instead,
            # by the brightest value, as the thumbnail the user sees is (ml.inputs.to_uint8).
            from ml.inputs import to_uint8

            grey = to_uint8(np.asarray(img.convert("I") if img.mode.startswith("I;16") else img))
            return np.repeat(grey[:, :, None], 3, axis=2)
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            # Cut-out exemplars: composite on the same neutral background as masked crops.
            rgba = img.convert("RGBA")
            background = PILImage.new("RGBA", rgba.size, (124, 116, 104, 255))
            return np.asarray(PILImage.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB"))


def job_matcher(snapshot: dict, embedder_version: str | None = None):
    """The matcher of a job: the matching settings frozen in its settings_snapshot at start
    (jobs/services.start_job), never the live project's, with the projection head that was
    active then (skipped when it was trained on another embedder's vectors)."""
    from ml.matcher import Matcher

    head = head_transform(snapshot.get("head_version_id"))
    if head is not None and embedder_version is not None and head.embedder_version != embedder_version:
        head = None
    return Matcher(
        unknown_threshold=snapshot["unknown_threshold"], margin=snapshot["min_margin"], top_k=snapshot["top_k"],
        unique_per_image=snapshot["unique_classes_per_image"], min_assign_score=snapshot["unknown_threshold"],
        transform=head,
    )
