"""Round 11 (bb11-ml): config values that passed the type check but failed mid-run or silently
gave nothing (M7), and `python -m ml bench` arguments (M8). Each is refused up front with one
line `error: ...` and exit status 2."""
import json
import subprocess
import sys

import cv2
import pytest

from ml.cli import build_parser, main


def _image(folder, images):
    cv2.imwrite(str(folder / "img0.png"), images[0][:, :, ::-1])


def _config(tiny_dir, tmp_path, change, name="config.json") -> str:
    data = json.loads((tiny_dir / name).read_text())
    for sec in data.values():  # the copy lives elsewhere: point its relative model paths back
        if isinstance(sec, dict):
            for key in ("model", "config", "checkpoint"):
                if isinstance(sec.get(key), str) and (tiny_dir / sec[key]).exists():
                    sec[key] = str(tiny_dir / sec[key])
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


def _annotate(tmp_path, config):
    return main(["annotate", "--images", str(tmp_path), "--out", str(tmp_path / "p.json"), "--config", config])


# --- M7: config values -----------------------------------------------------------------------
@pytest.mark.parametrize("change, said", [
    # were tracebacks (rc 1) mid-run
    (lambda d: d["embedder"].update(background=[1, 2]),
     "embedder.background: [1, 2] must be 3 integers from 0 to 255 (R, G, B)"),
    (lambda d: d["embedder"].update(crop_mode="bogus"), "embedder.crop_mode: 'bogus' must be \"masked\" or \"bbox\""),
    (lambda d: d["embedder"].update(input_size=0), "embedder.input_size: 0 must be an integer from 1 to 4096"),
    (lambda d: d["embedder"].update(classify_with="probs"),
     "embedder.classify_with: \"probs\" needs class probabilities: embedder.kind \"onnx\""),
    (lambda d: d["detector"].update(prompts=[]), "detector.prompts: [] must be a non-empty list of text prompts"),
    # were accepted silently (no detections, empty rankings, a hub download)
    (lambda d: d["detector"].update(box_threshold=5), "detector.box_threshold: 5 must be a number from 0 to 1"),
    (lambda d: d["matcher"].update(top_k=0), "matcher.top_k: 0 must be a positive integer"),
    (lambda d: d.update(segmenter=None), "segmenter: null is not a section; give a mapping of settings, "
                                         "or leave 'segmenter' out for the defaults"),
    # the same kind, found next to them
    (lambda d: d["detector"].update(max_detections=0), "detector.max_detections: 0 must be a positive integer"),
    (lambda d: d["embedder"].update(std=[0.0, 0.0, 0.0]), "embedder.std: [0.0, 0.0, 0.0] must be null or 3 numbers above 0"),
    (lambda d: d["embedder"].update(mean=[0.5]), "embedder.mean: [0.5] must be null or 3 numbers"),
    (lambda d: d["sam3"].update(score_threshold=-0.1), "sam3.score_threshold: -0.1 must be a number from 0 to 1"),
])
def test_round11_config_values_refused_up_front_naming_file_and_setting(tiny_dir, images, tmp_path, capsys,
                                                                         change, said):
    _image(tmp_path, images)
    config = _config(tiny_dir, tmp_path, change)
    with pytest.raises(SystemExit) as e:
        _annotate(tmp_path, config)
    assert e.value.code == 2
    assert str(e.value).startswith(f"{config}: {said}"), str(e.value)
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {e.value}" and "Traceback" not in err
    assert not (tmp_path / "p.json").exists()


def test_round11_onnx_probs_without_that_output_is_named_at_load(tiny_dir, images, tmp_path, capsys):
    # kind onnx, probs_output set, but the model has no such output: was a ValueError on the first image
    _image(tmp_path, images)
    config = _config(tiny_dir, tmp_path, lambda d: d["embedder"].update(classify_with="probs", probs_output="nope"),
                     name="config_onnx.json")
    with pytest.raises(SystemExit) as e:
        _annotate(tmp_path, config)
    assert e.value.code == 2
    assert str(e.value).startswith("embedder.probs_output: 'nope' is not an output of "), str(e.value)
    assert "classify_with \"gallery\"" in str(e.value)
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {e.value}"


def test_round11_null_section_is_one_line_and_no_network(tiny_dir, tmp_path):
    (tmp_path / "img.png").write_bytes(b"")
    config = _config(tiny_dir, tmp_path, lambda d: d.update(segmenter=None))
    proc = subprocess.run([sys.executable, "-m", "ml", "annotate", "--images", str(tmp_path), "--out",
                           str(tmp_path / "p.json"), "--config", config],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {config}: segmenter: null is not a section; give a mapping of settings, "
        "or leave 'segmenter' out for the defaults"]


def test_round11_good_configs_still_load(tiny_dir, tmp_path):
    from ml.config import PipelineConfig

    for name in ("config.json", "config_head.json", "config_onnx.json", "config_sam3.json", "config_maskrcnn.json"):
        PipelineConfig.from_file(tiny_dir / name)
    cfg = PipelineConfig.from_file(_config(tiny_dir, tmp_path, lambda d: d["embedder"].update(
        classify_with="probs"), name="config_onnx.json"))
    assert cfg.embedder.classify_with == "probs"  # onnx with a probs output: allowed
    assert PipelineConfig.from_dict({}).detector.prompts == ["tool"]  # a section left out: the defaults


# --- M8: bench arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("args, said", [
    (["--images", "-3"], "argument --images: '-3' must be a positive integer"),
    (["--images", "0"], "argument --images: '0' must be a positive integer"),
    (["--seed000-images", "-1"], "argument --seed000-images: '-1' must be 0 or a positive integer"),
    (["--repeats", "0"], "argument --repeats: '0' must be a positive integer"),
    (["--seed000-size", "0x0"], "argument --seed000-size: '0x0': width and height must each be from 32 to 16384 "
                                "pixels"),
    (["--seed000-size", "100000x100000"], "argument --seed000-size: '100000x100000': width and height must each "
                                          "be from 32 to 16384 pixels"),
    (["--seed000-size", "big"], "argument --seed000-size: 'big' must look like 4000x3000 (width x height)"),
])
def test_round11_bench_arguments_refused_by_the_parser(capsys, args, said):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["bench", "--quick", *args])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"python -m ml bench: error: {said}"


def test_round11_bench_arguments_in_range_are_kept():
    a = build_parser().parse_args(["bench", "--images", "3", "--seed000-images", "0", "--seed000-size", "640x480"])
    assert (a.images, a.seed000_images, a.seed000_size, a.repeats) == (3, 0, (480, 640), 2)
    assert build_parser().parse_args(["bench"]).seed000_size == (3000, 4000)
