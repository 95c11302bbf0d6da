"""A hub id whose files are not on this machine, with no hub to reach: refused at once naming the
setting and how to get the weights (was minutes of retries per load: 2 min for `{}` as the config,
57 s for a timm embedder without a checkpoint, black-box round 16b H5)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_with(tiny_dir: Path, **sections) -> dict:
    cfg = json.loads((tiny_dir / "config.json").read_text())
    for section, values in sections.items():
        cfg[section].update(values)
    for section, key in (("detector", "model"), ("segmenter", "config"), ("segmenter", "checkpoint"),
                         ("embedder", "checkpoint")):
        value = cfg[section][key]
        if value and not value.startswith(("facebook/", "IDEA-")):
            cfg[section][key] = str(tiny_dir / value)  # the copy lives elsewhere: absolute paths
    return cfg


def _partly_cached(hf_home: Path, repo_id: str, files: dict) -> None:
    """The hub cache's layout with only `files` of `repo_id` (a download cut short)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for name, text in files.items():
        (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / commit / name).write_text(text)


@pytest.mark.parametrize("case", ["defaults", "partial", "segmenter", "embedder"])
def test_a_hub_id_offline_is_refused_at_once(tiny_dir, tmp_path, case):
    """'partial': only config.json cached (black-box round 17b: the check of config.json alone
    passed, then 5 minutes of retries ended in "Can't load image processor")."""
    if case == "partial":
        _partly_cached(tmp_path / "hf-home", "IDEA-Research/grounding-dino-tiny", {"config.json": "{}"})
    config = {
        "defaults": lambda: {},
        "partial": lambda: {},
        "segmenter": lambda: _tiny_with(tiny_dir, segmenter={"checkpoint": "facebook/sam2.1-hiera-tiny",
                                                             "config": "configs/sam2.1/sam2.1_hiera_t.yaml"}),
        "embedder": lambda: _tiny_with(tiny_dir, embedder={"checkpoint": None, "pretrained": True}),
    }[case]()
    setting = {"defaults": "detector.model", "partial": "detector.model", "segmenter": "segmenter.checkpoint",
               "embedder": "embedder.model"}[case]
    (tmp_path / "config.json").write_text(json.dumps(config))
    Image.new("RGB", (64, 48), (90, 80, 70)).save(tmp_path / "a.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
           "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    r = subprocess.run([sys.executable, "-m", "ml", "annotate", "--config", str(tmp_path / "config.json"),
                        "--images", str(tmp_path / "a.png"), "--out", str(tmp_path / "out.json")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode != 0, r.stdout
    assert f"{setting}: " in r.stderr and "is a hub id whose files are not (all) on this machine" in r.stderr, r.stderr[-2000:]
    assert "make models" in r.stderr and "make tiny-models" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("setting", ["detector.model", "sam3.model"])
def test_a_model_path_that_is_a_file_is_said_to_be_a_file(tmp_path, monkeypatch, setting):
    """'weights/sam3' naming a file (not a folder) was taken by SAM 3 for a hub id and answered 'a hub id
    whose files are not on this machine' after probing the hub; the detector said 'is a file, not a
    folder'. One rule for both (hub_guard.require_model_source)."""
    import torch

    from ml.config import DetectorConfig, PipelineConfig, Sam3Config
    from ml.detector import Detector
    from ml.engines.sam3 import Sam3Engine
    from ml.errors import ModelLoadError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model").write_bytes(b"not a folder")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ModelLoadError) as err:
        if setting == "detector.model":
            Detector.load(DetectorConfig(model="weights/model"), torch.device("cpu"))
        else:
            Sam3Engine.load(PipelineConfig(sam3=Sam3Config(model="weights/model")), torch.device("cpu"),
                            with_detector=False)
    assert setting in str(err.value) and "is a file, not a folder" in str(err.value), str(err.value)
