"""Pipeline configuration: typed dataclasses loadable from JSON or YAML.

Model locations are a local path or a hub id. Relative paths in a config file are
resolved against the file's folder, so a tiny-models folder can be moved whole.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ml.errors import ConfigError, missing_path

ENV_CONFIG = "RAZMETKA_ML_CONFIG"


@dataclass
class DetectorConfig:
    model: str = "IDEA-Research/grounding-dino-tiny"  # hub id or local dir
    prompts: list[str] = field(default_factory=lambda: ["tool"])
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    nms_iou: float = 0.5
    nms_prefer: str = "score"  # "score" | "area": which of two overlapping boxes survives
    max_detections: int = 100  # top-N after thresholding and NMS
    batch_size: int | str = "auto"  # images per forward (same-size images only); "auto": ml/batching.py


@dataclass
class SegmenterConfig:
    config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"  # packaged hydra name or a yaml file path
    checkpoint: str | None = "facebook/sam2.1-hiera-tiny"  # .pt file or hub id
    mask_threshold: float = 0.0
    multimask: bool = True  # pick the best of 3 masks by predicted IoU
    # Boxes-given mode (imported boxes, a box drawn in the browser): SAM segments each box on its
    # own crop, the box grown by this fraction of its size per side (seed 003); null = whole image.
    roi_margin: float | None = 0.1
    batch_size: int | str = "auto"  # images per image-encoder forward; "auto": ml/batching.py


@dataclass
class EmbedderConfig:
    kind: str = "timm"  # "timm" | "projection_head" | "onnx"
    model: str = "vit_large_patch16_dinov3.lvd1689m"  # timm id, head .pt, or .onnx path
    checkpoint: str | None = None  # timm: local weights file (else hub via pretrained=True)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # timm create_model kwargs
    pretrained: bool = True  # timm: load weights (hub or checkpoint); False = random (bench)
    global_pool: str = "token"  # DINOv3 upstream uses the CLS token
    input_size: int = 224
    crop_mode: str = "masked"  # "masked" (object on neutral bg) | "bbox" (plain box crop)
    background: list[int] = field(default_factory=lambda: [124, 116, 104])  # ~ImageNet mean
    crop_padding: float = 0.0  # grow the crop box by this fraction of its size
    batch_size: int | str = "auto"  # crops per forward; "auto": ml/batching.py
    # ONNX-only settings
    layout: str = "NHWC"  # "NHWC" | "NCHW"
    input_dtype: str = "uint8"  # "uint8" | "float32"
    mean: list[float] | None = None  # float32 inputs: (x/255 - mean) / std; None = x/255
    std: list[float] | None = None
    input_name: str | None = None  # None = the model's first input
    feature_output: str = "feature"
    probs_output: str | None = "p"  # None or missing output = no class probabilities
    class_names: list[str] = field(default_factory=list)
    classify_with: str = "gallery"  # "gallery" (match the feature) | "probs" (take the class from p)


@dataclass
class MatcherConfig:
    unknown_threshold: float = 0.5
    margin: float = 0.0
    top_k: int = 5
    unique_per_image: bool = True
    min_assign_score: float = 0.0


@dataclass
class Sam3Config:
    """The ``sam3`` engine: text prompt -> masks of every matching instance, one model."""
    model: str = "facebook/sam3"  # hub id (gated: accept the licence on the hub) or local dir
    score_threshold: float = 0.5  # query score x presence score, as Sam3Processor's post-processing
    mask_threshold: float = 0.5  # on the mask probability
    nms_iou: float = 0.5  # across prompts: one object matched by two prompts is kept once
    max_detections: int = 100  # per image, after NMS
    batch_size: int | str = "auto"  # images per vision-encoder forward ("auto": the detector's row)


@dataclass
class MaskRCNNConfig:
    """The ``maskrcnn`` engine: closed-set instance segmentation (torchvision), trainable."""
    model: str = "models/maskrcnn"  # checkpoint folder: maskrcnn.json + model.pt (ml/maskrcnn_model.py)
    score_threshold: float = 0.5
    mask_threshold: float = 0.5  # on the pasted mask probability
    max_detections: int = 100
    batch_size: int | str = "auto"  # images per forward ("auto": the detector's row)


ENGINE_NAMES = ("gdino-sam2", "sam3", "maskrcnn")  # ml/engines registers one class per name


@dataclass
class PipelineConfig:
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1"
    dtype: str = "float32"  # CUDA autocast dtype: "float32" | "bfloat16" | "float16"
    engine: str = "gdino-sam2"  # which engine turns images into masks: ENGINE_NAMES
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    sam3: Sam3Config = field(default_factory=Sam3Config)
    maskrcnn: MaskRCNNConfig = field(default_factory=MaskRCNNConfig)

    _SECTIONS = {"detector": DetectorConfig, "segmenter": SegmenterConfig,
                 "embedder": EmbedderConfig, "matcher": MatcherConfig,
                 "sam3": Sam3Config, "maskrcnn": MaskRCNNConfig}

    @classmethod
    def from_dict(cls, d: dict, base_dir: str | os.PathLike | None = None) -> "PipelineConfig":
        if d is not None and not isinstance(d, dict):
            raise ConfigError(f"the config must be a mapping of settings, got {type(d).__name__}")
        d = dict(d or {})
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in cls._SECTIONS:
                kwargs[key] = _section(cls._SECTIONS[key], key, value)
            elif key in ("device", "dtype", "engine"):
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown config key {key!r}")
        cfg = cls(**kwargs)
        _check_types(cfg, "")
        if cfg.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype: {cfg.dtype!r} must be float32, bfloat16 or float16")
        check_engine(cfg.engine)
        from ml import batching
        for sec in (*batching.STAGES, "sam3", "maskrcnn"):
            if not batching.valid(getattr(cfg, sec).batch_size):
                raise ConfigError(f"{sec}.batch_size: {getattr(cfg, sec).batch_size!r} must be a positive "
                                  "integer or \"auto\" (see python -m ml bench --calibrate)")
        _check_values(cfg)
        if base_dir is not None:
            cfg._resolve_paths(Path(base_dir))
        return cfg

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "PipelineConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} {missing_path(p)} (env {ENV_CONFIG} or --config)")
        try:
            text = p.read_text(encoding="utf-8")
            if p.suffix.lower() in (".yaml", ".yml"):
                from omegaconf import OmegaConf  # yaml without adding a dependency (sam2 needs it)
                data = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
            else:
                data = json.loads(text, object_pairs_hook=_no_repeats)
        except OSError:
            raise
        except Exception as exc:  # a bare JSONDecodeError did not say which file was broken
            raise ConfigError(f"config file {str(p)!r} cannot be parsed: {exc}") from None
        if data is None:  # JSON null meant "every default" and then tried the hub for minutes offline
            raise ConfigError(f"config file {str(p)!r} holds null; it must be a mapping of settings ({{}} for the defaults)")
        try:
            return cls.from_dict(data, base_dir=p.parent)
        except ConfigError as exc:  # "<file>: <setting>: <what is allowed>": which file to edit, too
            raise ConfigError(f"{p}: {exc}") from None

    @classmethod
    def from_env(cls, path: str | None = None) -> "PipelineConfig":
        """``path`` if given, else the file in $RAZMETKA_ML_CONFIG, else defaults."""
        path = path or os.environ.get(ENV_CONFIG)
        return cls.from_file(path) if path else cls()

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if not k.startswith("_")}

    def to_file(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")

    def _resolve_paths(self, base: Path) -> None:
        # Only values that look like relative paths AND exist under base are rewritten,
        # so hub ids ("org/name") and packaged sam2 config names are left alone.
        for sec, attr in (("detector", "model"), ("segmenter", "config"), ("segmenter", "checkpoint"),
                          ("embedder", "model"), ("embedder", "checkpoint"), ("sam3", "model"), ("maskrcnn", "model")):
            obj = getattr(self, sec)
            val = getattr(obj, attr)
            if val and not os.path.isabs(val) and ((base / val).exists() or _folder_beside(base, val)):
                # A missing 'models/x' whose 'models' is beside the config is a missing folder, not a
                # hub id (tried on the hub for minutes offline, black-box round 16b): its full path
                # is what the loader then says is not found.
                setattr(obj, attr, str((base / val).resolve()))


def _no_repeats(pairs: list) -> dict:
    """A JSON object whose keys are all different: a repeated one silently kept its last value
    ('"device": "cpu" … "device": "cuda"'), where a yaml file with one is refused (black-box round 17)."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} is given twice in one object")
        seen.add(key)
    return dict(pairs)


def _folder_beside(base: Path, value: str) -> bool:
    head = value.replace(os.sep, "/").split("/", 1)[0]
    return "/" in value.replace(os.sep, "/") and head not in ("", ".", "..") and (base / head).is_dir()


def check_engine(name) -> str:
    if name not in ENGINE_NAMES:
        raise ConfigError(f"engine: {name!r} is not an engine; choose one of {', '.join(ENGINE_NAMES)}")
    return name


def _section(klass, name: str, value: dict):
    if value is None:  # `segmenter: null` (or an empty yaml section) used to mean the hub defaults, silently
        raise ConfigError(f"{name}: null is not a section; give a mapping of settings, or leave {name!r} "
                          "out for the defaults")
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(value).__name__}")
    known = {f.name for f in fields(klass)}
    unknown = set(value) - known
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {sorted(unknown)}")
    return _check_types(klass(**value), f"{name}.")


# Annotation names (``from __future__ import annotations`` keeps them as strings) -> the types
# a value may have. A string box_threshold used to reach numpy and fail there, unnamed.
_TYPES = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,), "list": (list,), "dict": (dict,)}
_SAID = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string", "list": "a list",
         "dict": "a mapping", "None": "null"}


def _check_types(obj, prefix: str):
    for f in fields(obj):
        if f.name.startswith("_") or not isinstance(f.type, str):
            continue
        allowed = [a.split("[")[0] for a in f.type.replace(" ", "").split("|")]
        value = getattr(obj, f.name)
        kinds = tuple(t for a in allowed for t in _TYPES.get(a, ()))
        if not kinds or dataclasses.is_dataclass(value) or (value is None and "None" in allowed):
            continue
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join(_SAID.get(a, a) for a in allowed)
            raise ConfigError(f"{prefix}{f.name}: {value!r} must be {want}")
        if isinstance(value, float) and not math.isfinite(value):
            # JSON's NaN passed every range test (NaN compares false): segmenter.mask_threshold NaN
            # gave empty masks, matcher.unknown_threshold NaN made every object unknown, exit 0.
            raise ConfigError(f"{prefix}{f.name}: {value!r} must be a finite number")
    return obj


# Allowed values beyond the type. Each of these used to pass the type check and then fail mid-run
# (a traceback after the models loaded, or on the first crop), or silently give nothing
# (box_threshold 5: no detections; top_k 0: empty rankings). Checked when the config is read,
# so the CLI and the backend's workers both refuse them before any model loads.
_UNIT = ("detector.box_threshold", "detector.text_threshold", "detector.nms_iou", "sam3.score_threshold",
         "sam3.mask_threshold", "sam3.nms_iou", "maskrcnn.score_threshold", "maskrcnn.mask_threshold")
_POSITIVE = ("detector.max_detections", "sam3.max_detections", "maskrcnn.max_detections", "matcher.top_k")
_CHOICES = {"detector.nms_prefer": ("score", "area"), "embedder.kind": ("timm", "projection_head", "onnx"),
            "embedder.crop_mode": ("masked", "bbox"), "embedder.layout": ("NHWC", "NCHW"),
            "embedder.input_dtype": ("uint8", "float32"), "embedder.classify_with": ("gallery", "probs")}
MAX_INPUT_SIZE = 4096  # embedder.input_size: crops are resized to a square this big


def _get(cfg, name: str):
    sec, attr = name.split(".")
    return getattr(getattr(cfg, sec), attr)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_values(cfg) -> None:
    for name in _UNIT:
        v = _get(cfg, name)
        if not 0 <= v <= 1:
            raise ConfigError(f"{name}: {v!r} must be a number from 0 to 1")
    for name in _POSITIVE:
        v = _get(cfg, name)
        if v < 1:
            raise ConfigError(f"{name}: {v!r} must be a positive integer")
    for name, allowed in _CHOICES.items():
        v = _get(cfg, name)
        if v not in allowed:
            raise ConfigError(f"{name}: {v!r} must be " + " or ".join(f'"{a}"' for a in allowed))
    prompts = cfg.detector.prompts
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ConfigError(f"detector.prompts: {prompts!r} must be a non-empty list of text prompts (the default "
                          "when a job or --prompt gives none)")
    margin = cfg.segmenter.roi_margin
    if margin is not None and not 0 <= margin <= 10:
        raise ConfigError(f"segmenter.roi_margin: {margin!r} must be null or a number from 0 to 10")
    e = cfg.embedder
    if not 1 <= e.input_size <= MAX_INPUT_SIZE:
        raise ConfigError(f"embedder.input_size: {e.input_size!r} must be an integer from 1 to {MAX_INPUT_SIZE}")
    if len(e.background) != 3 or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255
                                         for c in e.background):
        raise ConfigError(f"embedder.background: {e.background!r} must be 3 integers from 0 to 255 (R, G, B)")
    if not 0 <= e.crop_padding <= 10:
        raise ConfigError(f"embedder.crop_padding: {e.crop_padding!r} must be a number from 0 to 10")
    for name, v, low in (("mean", e.mean, None), ("std", e.std, 0)):
        if v is not None and (len(v) != 3 or not all(_number(x) and (low is None or x > low) for x in v)):
            raise ConfigError(f"embedder.{name}: {v!r} must be null or 3 " +
                              ("numbers" if low is None else "numbers above 0") + " (R, G, B)")
    if not all(isinstance(c, str) for c in e.class_names):
        raise ConfigError(f"embedder.class_names: {e.class_names!r} must be a list of strings")
    if e.classify_with == "probs" and (e.kind != "onnx" or not e.probs_output):
        raise ConfigError(f"embedder.classify_with: \"probs\" needs class probabilities: embedder.kind \"onnx\" "
                          f"with embedder.probs_output set (here kind {e.kind!r}, probs_output "
                          f"{e.probs_output!r}); use \"gallery\"")
