import json
import subprocess
import sys

import pytest
import torch

from ml.config import PipelineConfig
from ml.errors import ConfigError, ModelLoadError


def test_config_round_trip_json_and_yaml(tmp_path):
    cfg = PipelineConfig.from_dict({"device": "cpu", "detector": {"box_threshold": 0.2, "prompts": ["a", "b"]},
                                    "matcher": {"unique_per_image": False}})
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert PipelineConfig.from_file(tmp_path / "c.json") == cfg
    (tmp_path / "c.yaml").write_text("device: cpu\ndetector:\n  box_threshold: 0.2\n  prompts: [a, b]\n"
                                     "matcher:\n  unique_per_image: false\n")
    assert PipelineConfig.from_file(tmp_path / "c.yaml") == cfg
    with pytest.raises(ConfigError):
        PipelineConfig.from_dict({"detector": {"nope": 1}})


def test_missing_models_name_the_setting(tmp_path):
    from ml.detector import Detector
    from ml.embedders import load_embedder
    from ml.segmenter import Segmenter

    cfg = PipelineConfig()
    cpu = torch.device("cpu")
    cfg.detector.model = "/x/missing_gdino"
    with pytest.raises(ModelLoadError) as e:
        Detector.load(cfg.detector, cpu)
    assert "detector.model" in str(e.value) and "/x/missing_gdino" in str(e.value)
    assert "RAZMETKA_ML_CONFIG" in str(e.value)
    cfg.segmenter.checkpoint = str(tmp_path / "nope.pt")
    with pytest.raises(ModelLoadError, match="segmenter.checkpoint"):
        Segmenter.load(cfg.segmenter, cpu)
    cfg.embedder.checkpoint = str(tmp_path / "nope.pth")
    with pytest.raises(ModelLoadError, match="embedder.checkpoint"):
        load_embedder(cfg.embedder, cpu)
    cfg.embedder.kind, cfg.embedder.model = "onnx", str(tmp_path / "nope.onnx")
    with pytest.raises(ModelLoadError, match="embedder.model"):
        load_embedder(cfg.embedder, cpu)


def test_hub_id_unavailable_offline_is_a_model_load_error():
    from ml.detector import Detector

    cfg = PipelineConfig()
    cfg.detector.model = "razmetka-test/does-not-exist"
    with pytest.raises(ModelLoadError, match="detector.model"):
        Detector.load(cfg.detector, torch.device("cpu"))


def test_sam2_checkpoint_must_fit_config(tiny_dir):
    from ml.segmenter import Segmenter

    cfg = PipelineConfig.from_file(tiny_dir / "config.json")
    cfg.segmenter.config = "configs/sam2.1/sam2.1_hiera_t.yaml"  # packaged name, tiny checkpoint
    with pytest.raises(ModelLoadError, match="segmenter.checkpoint"):
        Segmenter.load(cfg.segmenter, torch.device("cpu"))


def test_import_ml_does_not_import_django():
    code = ("import sys, ml, ml.pipeline, ml.cli, ml.matcher, ml.masks; "
            "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_matcher_works_in_a_process_without_torch():
    # the web backend re-scores stored embeddings without torch installed
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from ml.matcher import Matcher; from ml.gallery import Gallery; import ml.masks, ml.config, ml.formats\n"
        "g = Gallery(np.eye(3), ['a', 'b', 'c'], [1, 2, 3])\n"
        "r = Matcher(unknown_threshold=0.5, unique_per_image=True).match(np.array([[0, 1, 0.1]]), g)\n"
        "assert r[0].label == 'b' and r[0].ranked[0][2] == 2\n"
        "assert not any(m.startswith(('timm', 'sam2', 'transformers')) for m in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("section,name", [("segmenter", "mask_threshold"), ("matcher", "unknown_threshold"),
                                          ("matcher", "margin"), ("matcher", "min_assign_score"),
                                          ("detector", "box_threshold")])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_setting_that_is_not_a_finite_number_is_refused(section, name, value):
    """Black-box round 13: NaN passed five settings' checks (NaN compares false with every bound);
    mask_threshold NaN gave empty masks and unknown_threshold NaN made every object unknown."""
    with pytest.raises(ConfigError, match=rf"{section}\.{name}: (nan|inf) must be a finite number"):
        PipelineConfig.from_dict({section: {name: value}})


def test_an_embedder_mean_with_nan_is_refused():
    with pytest.raises(ConfigError, match=r"embedder\.mean"):
        PipelineConfig.from_dict({"embedder": {"mean": [0.5, float("nan"), 0.5]}})
