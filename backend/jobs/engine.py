"""The ml pipeline inside a worker process: built once from RAZMETKA_ML_CONFIG and reused."""
from __future__ import annotations

import io
import os
import threading

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image as PILImage


class EngineNotConfigured(Exception):
    pass


_lock = threading.Lock()
_cache: dict[tuple, object] = {}


def config_path() -> str:
    path = settings.RAZMETKA_ML_CONFIG
    if not path:
        raise EngineNotConfigured(
            "Pre-annotation models are not configured: set RAZMETKA_ML_CONFIG to a pipeline config file "
            "(for an offline trial, `make tiny-models` writes var/tiny-models/config.json)."
        )
    if not os.path.isfile(path):
        raise EngineNotConfigured(f"RAZMETKA_ML_CONFIG points at {path!r}, which does not exist.")
    return path


def load_config():
    from ml.config import PipelineConfig

    cfg = PipelineConfig.from_file(config_path())
    cfg.device = settings.RAZMETKA_ML_DEVICE or cfg.device
    return cfg


def get_pipeline():
    """The process-wide pipeline; rebuilt only when the config file or device changes."""
    from ml.pipeline import Pipeline

    path = config_path()
    key = (path, os.path.getmtime(path), settings.RAZMETKA_ML_DEVICE)
    with _lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = Pipeline.from_config(load_config())
        return _cache[key]


def read_rgb(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as fh, PILImage.open(io.BytesIO(fh.read())) as img:
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            # Cut-out exemplars: composite on the same neutral background as masked crops.
            rgba = img.convert("RGBA")
            background = PILImage.new("RGBA", rgba.size, (124, 116, 104, 255))
            return np.asarray(PILImage.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB"))


def job_matcher(snapshot: dict):
    """The matcher of a job: the matching settings frozen in its settings_snapshot at start
    (jobs/services.start_job), never the live project's."""
    from ml.matcher import Matcher

    return Matcher(
        unknown_threshold=snapshot["unknown_threshold"], margin=snapshot["min_margin"], top_k=snapshot["top_k"],
        unique_per_image=snapshot["unique_classes_per_image"], min_assign_score=snapshot["unknown_threshold"],
    )
