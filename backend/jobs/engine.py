"""The ml pipeline inside a worker process: built once from RAZMETKA_ML_CONFIG and reused."""
from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage

from backend.core.paths import shown_path
from backend.learning.selectors import ModelUnavailable, head_transform
from ml.decode import decode_rgb  # the workers' decoder, shared with the CLI


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
