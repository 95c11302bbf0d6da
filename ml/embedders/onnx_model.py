"""ONNX embedder/classifier through onnxruntime.

Covers seed 001's classifier: input uint8 [bs,112,112,3] NHWC; outputs ``p``
[bs,11] class probabilities and ``feature`` [bs,512]. Input size, layout, dtype
and output names are configurable.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ml.config import EmbedderConfig
from ml.embedders.base import Embedder, file_fingerprint
from ml.embedders.crops import square_resize
from ml.errors import ConfigError, ModelLoadError, missing_path


def _to_float(x: np.ndarray) -> np.ndarray:
    # A quantised (uint8) output is rescaled to [0, 1]; cosine/argmax are unaffected.
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


class OnnxEmbedder(Embedder):
    def __init__(self, session, cfg: EmbedderConfig):
        self.session = session
        self.cfg = cfg
        self.batch_size = cfg.batch_size
        self.input_name = cfg.input_name or session.get_inputs()[0].name
        outputs = {o.name: o for o in session.get_outputs()}
        if cfg.feature_output not in outputs:
            raise ModelLoadError("embedder.feature_output", cfg.feature_output,
                                 f"is not an output of {cfg.model}", hint=f"one of {sorted(outputs)}")
        self.feature_output = cfg.feature_output
        self.probs_output = cfg.probs_output if cfg.probs_output in outputs else None
        if cfg.classify_with == "probs" and self.probs_output is None:  # was a ValueError on the first image
            raise ModelLoadError("embedder.probs_output", cfg.probs_output,
                                 f"is not an output of {cfg.model}, but embedder.classify_with is \"probs\"",
                                 hint=f"one of {sorted(outputs)}, or classify_with \"gallery\"")
        shape = outputs[cfg.feature_output].shape
        self.dim = int(shape[-1]) if isinstance(shape[-1], int) else 0
        self.class_names = list(cfg.class_names)
        if self.probs_output and not self.class_names:
            n = outputs[self.probs_output].shape[-1]
            self.class_names = [f"class_{i}" for i in range(int(n) if isinstance(n, int) else 0)]
        self.version = "onnx:" + json.dumps(
            [file_fingerprint(cfg.model), cfg.input_size, cfg.layout, cfg.input_dtype, cfg.mean, cfg.std,
             cfg.feature_output, cfg.crop_mode, cfg.background, cfg.crop_padding], sort_keys=True)

    @classmethod
    def load(cls, cfg: EmbedderConfig, device=None, dtype: str = "float32") -> "OnnxEmbedder":
        import onnxruntime as ort

        if not os.path.isfile(cfg.model):
            raise ModelLoadError("embedder.model", cfg.model, f"{missing_path(cfg.model)} (.onnx file)")
        providers = ["CPUExecutionProvider"]
        if device is not None and getattr(device, "type", "cpu") == "cuda" and \
                "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            sess = ort.InferenceSession(cfg.model, providers=providers)
        except Exception as e:
            raise ModelLoadError("embedder.model", cfg.model, f"cannot be loaded by onnxruntime ({e})") from e
        _check_input_size(sess, cfg)
        return cls(sess, cfg)

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        x = np.stack([square_resize(c, self.cfg.input_size, self.cfg.background) for c in crops])
        if self.cfg.input_dtype == "float32":
            x = x.astype(np.float32) / 255.0
            if self.cfg.mean is not None:
                x = (x - np.asarray(self.cfg.mean, np.float32)) / np.asarray(self.cfg.std or [1, 1, 1], np.float32)
        elif self.cfg.input_dtype != "uint8":
            raise ValueError(f"embedder.input_dtype must be uint8 or float32, got {self.cfg.input_dtype!r}")
        if self.cfg.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    @property
    def crop_size(self) -> int | None:
        return int(self.cfg.input_size)

    def _embed_batch(self, crops):
        names = [self.feature_output] + ([self.probs_output] if self.probs_output else [])
        outs = self.session.run(names, {self.input_name: self.preprocess(crops)})
        feat = _to_float(outs[0]).reshape(len(crops), -1)
        probs = _to_float(outs[1]).reshape(len(crops), -1) if self.probs_output else None
        return feat, probs


def _check_input_size(sess, cfg: EmbedderConfig) -> None:
    """A model with a fixed input side other than embedder.input_size (or laid out the other way)
    failed on the first crop with an onnxruntime traceback (black-box round 16b): said at load."""
    shape = sess.get_inputs()[0].shape
    if len(shape) != 4:
        return
    sides = {"NCHW": (shape[1], shape[2], shape[3]), "NHWC": (shape[3], shape[1], shape[2])}  # channels, h, w
    channels, h, w = sides[cfg.layout]
    if not all(isinstance(v, int) for v in (channels, h, w)):
        return  # dynamic axes: any size goes
    if channels != 3:
        other = "NHWC" if cfg.layout == "NCHW" else "NCHW"
        raise ConfigError(f"embedder.layout: {cfg.layout!r} but the model {cfg.model!r} takes {shape} "
                          f"(3 channels last/first): set embedder.layout to {other!r}")
    if (h, w) != (cfg.input_size, cfg.input_size):
        raise ConfigError(f"embedder.input_size: {cfg.input_size} but the model {cfg.model!r} takes {h}x{w}; "
                          f"set embedder.input_size to {h}" if h == w else
                          f"embedder.input_size: the model {cfg.model!r} takes {h}x{w}, not a square")
