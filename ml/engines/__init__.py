"""Engine registry: an engine turns images (+ text prompts, or given boxes) into masks with
scores; the pipeline then embeds the crops and the gallery matcher classifies them.

``ENGINES`` maps the name a config / project uses to the class. Importing this package loads
no model library; what each engine needs is data in ``catalog.json`` (also read by the web API)."""
from __future__ import annotations

from ml.config import ENGINE_NAMES, check_engine
from ml.engines.base import Engine, EngineInfo, Proposal
from ml.engines.gdino_sam2 import GdinoSam2Engine
from ml.engines.maskrcnn import MaskRCNNEngine
from ml.engines.sam3 import Sam3Engine

ENGINES: dict[str, type[Engine]] = {c.info.name: c for c in (GdinoSam2Engine, Sam3Engine, MaskRCNNEngine)}
assert tuple(ENGINES) == ENGINE_NAMES, "ml.config.ENGINE_NAMES and the registry disagree"


def describe() -> list[dict]:
    """Every engine: name, title, what it needs (weights, hub ids, gated), what it can do."""
    return [c.describe() for c in ENGINES.values()]


def load_engine(cfg, device, with_detector: bool = True) -> Engine:
    """The engine named by ``cfg.engine``, its models loaded on ``device``."""
    return ENGINES[check_engine(cfg.engine)].load(cfg, device, with_detector)


__all__ = ["ENGINES", "Engine", "EngineInfo", "Proposal", "describe", "load_engine"]
