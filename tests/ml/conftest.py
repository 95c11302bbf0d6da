"""Fixtures for the ML engine tests: tiny random-weight models built once per session."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no weights can be downloaded here
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from ml.tiny import build_tiny_models

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = tmp_path_factory.mktemp("tiny_models")
    build_tiny_models(out)
    return out


@pytest.fixture(scope="session")
def tiny_config(tiny_dir):
    from ml.config import PipelineConfig

    return PipelineConfig.from_file(tiny_dir / "config.json")


@pytest.fixture(scope="session")
def pipeline(tiny_config):
    from ml.pipeline import Pipeline

    return Pipeline.from_config(tiny_config)


@pytest.fixture(scope="session")
def images():
    from ml.tiny import synthetic_image

    return [synthetic_image(i) for i in range(3)]


@pytest.fixture(scope="session")
def gallery(pipeline):
    from ml.gallery import Gallery
    from ml.tiny import synthetic_image

    crops = [synthetic_image(50 + i)[10:80, 10:110] for i in range(6)]
    return Gallery(pipeline.embed_crops(crops), ["hammer", "hammer", "wrench", "pliers", "pliers", "saw"],
                   [f"ex{i}" for i in range(6)], pipeline.embedder_version)


@pytest.fixture
def rng():
    return np.random.RandomState(0)
