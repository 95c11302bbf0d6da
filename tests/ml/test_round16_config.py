"""Black-box round 16 (ml): model folders and config mistakes that crashed with a traceback, stalled
on the hub for minutes offline, or silently gave nothing, now refused up front with the setting named."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from ml.config import PipelineConfig
from ml.errors import ConfigError, ModelLoadError

CPU = torch.device("cpu")


def test_a_detector_folder_without_its_tokenizer_is_refused(tiny_dir, tmp_path):
    """Every prompt word read as [UNK]: 0 detections on every image, exit 0, no warning."""
    from ml.detector import Detector

    folder = tmp_path / "gd"
    shutil.copytree(tiny_dir / "grounding_dino", folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    cfg = PipelineConfig.from_file(tiny_dir / "config.json")
    cfg.detector.model = str(folder)
    with pytest.raises(ModelLoadError, match=r"detector.model: .* has no usable tokenizer: every word of \['tool'\] reads as"):
        Detector.load(cfg.detector, CPU)
    cfg.detector.model = str(tiny_dir / "grounding_dino")  # the whole folder still loads
    Detector.load(cfg.detector, CPU)


def test_an_input_size_off_the_patch_grid_is_named(tiny_dir):
    from ml.embedders import load_embedder

    cfg = PipelineConfig.from_file(tiny_dir / "config.json")
    cfg.embedder.input_size = 518  # DINOv2's size (patch 14) on a patch-16 model
    with pytest.raises(ConfigError, match=r"embedder.input_size: 518 is not a multiple of the model's patch size 16; use 512 or 528"):
        load_embedder(cfg.embedder, CPU)


def test_a_device_torch_here_cannot_use_is_a_config_error():
    from ml.device import resolve_device

    with pytest.raises(ConfigError, match=r"device: 'mps' is not supported here"):
        resolve_device("mps")


def test_a_config_file_of_null_is_refused(tmp_path):
    path = tmp_path / "null.json"
    path.write_text("null")
    with pytest.raises(ConfigError, match="holds null; it must be a mapping"):
        PipelineConfig.from_file(path)


def test_a_segmenter_yaml_that_does_not_parse_names_the_setting(tiny_dir, tmp_path):
    from ml.segmenter import Segmenter

    cfg = PipelineConfig.from_file(tiny_dir / "config.json")
    broken = tmp_path / "sam2_tiny.yaml"
    broken.write_text("model: [unclosed\n")
    cfg.segmenter.config = str(broken)
    with pytest.raises(ModelLoadError, match=r"segmenter.config: .* cannot be parsed"):
        Segmenter.load(cfg.segmenter, CPU)


def test_a_bare_model_name_missing_beside_the_config_is_not_tried_on_the_hub(tiny_dir, tmp_path):
    """A config copied without its 'sam3' folder tried 'sam3' on the hub: 218 s of retries offline."""
    from ml.detector import Detector
    from ml.engines.sam3 import Sam3Engine

    data = json.loads((tiny_dir / "config_sam3.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(data))
    cfg = PipelineConfig.from_file(tmp_path / "config.json")  # no folders beside it
    with pytest.raises(ModelLoadError, match=r"sam3.model: 'sam3' not found;"):  # not "cannot be loaded (OSError…hub…)"
        Sam3Engine.load(cfg, CPU, with_detector=False)
    with pytest.raises(ModelLoadError, match=r"detector.model: 'grounding_dino' not found;"):
        Detector.load(cfg.detector, CPU)


@pytest.mark.parametrize("text", ["- model\n- other\n", "model:\n  x: ${nowhere.to_be_found}\n", "{}\n"])
def test_a_segmenter_yaml_without_a_usable_model_section_names_the_setting(tiny_dir, tmp_path, text):
    """Black-box round 16b: a yaml that is a list or has an unresolved ${...} was a traceback; an
    empty one was blamed on the checkpoint."""
    from ml.segmenter import Segmenter

    cfg = PipelineConfig.from_file(tiny_dir / "config.json")
    broken = tmp_path / "sam2_tiny.yaml"
    broken.write_text(text)
    cfg.segmenter.config = str(broken)
    with pytest.raises(ModelLoadError, match=r"segmenter.config: .* cannot be parsed"):
        Segmenter.load(cfg.segmenter, CPU)


def test_an_onnx_embedder_of_another_input_size_is_named(tiny_dir):
    from ml.embedders import load_embedder

    cfg = PipelineConfig.from_file(tiny_dir / "config_onnx.json")
    size = cfg.embedder.input_size
    cfg.embedder.input_size = size + 16
    with pytest.raises(ConfigError, match=rf"embedder.input_size: {size + 16} but the model .* takes {size}x{size}"):
        load_embedder(cfg.embedder, CPU)
    cfg.embedder.input_size = size
    cfg.embedder.layout = "NCHW"
    with pytest.raises(ConfigError, match=r"embedder.layout: 'NCHW' but the model .* set embedder.layout to 'NHWC'"):
        load_embedder(cfg.embedder, CPU)
    cfg.embedder.layout = "NHWC"
    load_embedder(cfg.embedder, CPU)


def test_a_missing_folder_under_one_beside_the_config_is_not_a_hub_id(tiny_dir, tmp_path):
    """Black-box round 16b: 'models/gd_missing' (with 'models' beside the config) was tried on the hub."""
    from ml.detector import Detector

    data = json.loads((tiny_dir / "config.json").read_text())
    data["detector"]["model"] = "models/gd_missing"
    (tmp_path / "models").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(data))
    cfg = PipelineConfig.from_file(tmp_path / "config.json")
    assert cfg.detector.model == str((tmp_path / "models" / "gd_missing").resolve())
    with pytest.raises(ModelLoadError, match=r"detector.model: .*gd_missing' not found;"):
        Detector.load(cfg.detector, CPU)
