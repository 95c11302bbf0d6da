"""The bench's pieces: per-device batch sizes, calibration, seed 000's re-implementation, the CLI.
Speed is printed by the bench, never asserted here."""
import json
import shutil

import numpy as np
import pytest

from ml import batching
from ml.bench import CROP_BATCHES, calibrate, write_batch_sizes
from ml.bench_seed000 import annotate_seed000, python_row_major_rle, save_exemplars
from ml.cli import main
from ml.config import PipelineConfig
from ml.errors import ConfigError
from ml.masks import decode_native_rle, encode_native_rle, mask_iou
from ml.pipeline import Pipeline


@pytest.mark.parametrize("kind", ["random", "starts_with_one", "empty", "full"])
def test_seed_python_rle_matches_ours(kind, rng):
    m = rng.rand(37, 53) > 0.6
    m = {"random": m, "starts_with_one": np.pad(m, 0) | np.eye(37, 53, dtype=bool),
         "empty": np.zeros((8, 9), bool), "full": np.ones((8, 9), bool)}[kind]
    seed = python_row_major_rle(m)
    assert seed == encode_native_rle(m)
    assert np.array_equal(decode_native_rle(seed), m)


def test_auto_batch_sizes_per_device():
    assert batching.resolve("auto", "segmenter", "cpu") == 1
    assert batching.resolve("auto", "detector", None) == 1
    assert batching.resolve("auto", "segmenter", "cuda:1") == batching.DEVICE_DEFAULTS["cuda"]["segmenter"]
    assert batching.resolve(6, "embedder", "cpu") == 6
    assert PipelineConfig().segmenter.batch_size == "auto"
    resolved = batching.resolved_config(PipelineConfig(), "cpu")
    assert (resolved.detector.batch_size, resolved.segmenter.batch_size) == (1, 1)


@pytest.mark.parametrize("bad", [0, -2, "big", True, 1.5])
def test_bad_batch_size_names_the_setting(bad):
    with pytest.raises(ConfigError, match=r"segmenter\.batch_size"):
        PipelineConfig.from_dict({"segmenter": {"batch_size": bad}})


def test_calibrate_picks_measured_sizes_and_writes_them(tiny_dir, tiny_config, images, tmp_path):
    pipe = Pipeline.from_config(tiny_config)  # its own: calibration changes the stages
    lines = []
    chosen = calibrate(pipe, list(images), log=lines.append)
    assert set(chosen) == {"detector", "segmenter", "embedder"}
    assert chosen["detector"] in (1, 2) and chosen["segmenter"] in (1, 2)  # 3 images: bs 4 is not tried
    assert chosen["embedder"] in CROP_BATCHES
    assert (pipe.detector.cfg.batch_size, pipe.segmenter.cfg.batch_size, pipe.embedder.batch_size) == \
        (chosen["detector"], chosen["segmenter"], chosen["embedder"])
    assert len(lines) == 3 and all("->" in line for line in lines)

    cfg_file = tmp_path / "config.json"
    shutil.copy(tiny_dir / "config.json", cfg_file)
    before = json.loads(cfg_file.read_text())
    write_batch_sizes(str(cfg_file), chosen)
    after = json.loads(cfg_file.read_text())
    for stage, b in chosen.items():
        assert after[stage].pop("batch_size") == b
        before[stage].pop("batch_size", None)
    assert after == before  # nothing else touched
    PipelineConfig.from_file(cfg_file)  # still a valid config


def test_seed000_path_gives_the_reference_results(pipeline, images, gallery, tmp_path):
    exemplars = [np.full((20, 20, 3), 40 * i, np.uint8) for i in range(len(gallery))]
    files = save_exemplars(exemplars, gallery.exemplar_ids, tmp_path / "gallery")
    names = ["a.png", "b.png"]
    preds = annotate_seed000(pipeline, list(images[:2]), names, gallery, files, tmp_path / "out")
    ref = pipeline.annotate_reference(list(images[:2]), gallery)
    assert json.loads((tmp_path / "out" / "predictions.json").read_text()) == preds
    assert (tmp_path / "out" / "timings.csv").read_text().count("\n") == 3
    for p, r in zip(preds, ref):
        assert len(p["detections"]) == len(r.detections) > 0
        for d, rd in zip(p["detections"], r.detections):
            assert d["class"] == rd.match.label
            assert np.allclose(d["bbox_xyxy"], rd.bbox_xyxy)
            assert mask_iou(decode_native_rle(d["mask_rle"]), rd.mask) == 1.0
    det = tmp_path / "out" / "debug" / "a" / "det_000"
    assert {"crop.png", "mask.png", "similarities.json"} <= {f.name for f in det.iterdir()}
    assert any(f.name.startswith("exemplar_") for f in det.iterdir())  # copies of the best exemplars
    assert set(json.loads((det / "similarities.json").read_text())) == {str(e) for e in gallery.exemplar_ids}


def test_bench_cli_prints_both_speedups_and_calibrates(tiny_dir, tmp_path, capsys):
    cfg_file = tmp_path / "config.json"
    shutil.copy(tiny_dir / "config.json", cfg_file)
    cfg = json.loads(cfg_file.read_text())
    for key in ("model",):  # the copy lives elsewhere: point its relative model paths back
        cfg["detector"][key] = str(tiny_dir / cfg["detector"][key])
    cfg["segmenter"]["config"] = str(tiny_dir / cfg["segmenter"]["config"])
    cfg["segmenter"]["checkpoint"] = str(tiny_dir / cfg["segmenter"]["checkpoint"])
    cfg["embedder"]["checkpoint"] = str(tiny_dir / cfg["embedder"]["checkpoint"])
    cfg_file.write_text(json.dumps(cfg))
    rc = main(["bench", "--device", "cpu", "--quick", "--config", str(cfg_file), "--images", "2", "--calibrate",
               "--seed000-images", "1", "--seed000-size", "640x480"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "speedup=" in out and "identical=true" in out
    assert "speedup_vs_reference=" in out and "speedup_vs_seed000=" in out and "640x480" in out
    written = json.loads(cfg_file.read_text())
    assert all(isinstance(written[s]["batch_size"], int) for s in batching.STAGES)


def test_bench_cli_rejects_a_bad_size(capsys):
    # refused by the parser (round 11): exit 2, the argument named on the last line
    with pytest.raises(SystemExit) as e:
        main(["bench", "--seed000-size", "big"])
    assert e.value.code == 2 and "4000x3000" in capsys.readouterr().err.strip().splitlines()[-1]


def test_batched_path_with_several_images_per_forward_agrees(tiny_config, images, gallery):
    """"auto" is 1 image per forward on CPU; a calibrated (or GPU) size above 1 must give the
    same results as one image at a time."""
    from dataclasses import replace

    cfg = replace(tiny_config, detector=replace(tiny_config.detector, batch_size=3),
                  segmenter=replace(tiny_config.segmenter, batch_size=3),
                  embedder=replace(tiny_config.embedder, batch_size=5))
    pipe = Pipeline.from_config(cfg)
    bat = pipe.annotate(list(images), gallery)
    ref = pipe.annotate_reference(list(images), gallery)
    for a, b in zip(bat, ref):
        assert len(a.detections) == len(b.detections) > 0
        for da, db in zip(a.detections, b.detections):
            np.testing.assert_allclose(da.bbox_xyxy, db.bbox_xyxy, atol=1e-3)
            assert mask_iou(da.mask, db.mask) >= 0.99 and da.match.label == db.match.label
