"""Round 9 (bb-ml9): `python -m ml` with 16-bit images (finding 5), unreadable files in the
folder (finding 7) and bad configs or arguments (finding 8)."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from ml.cli import main, read_rgb
from ml.inputs import to_uint8


def _good(folder, images, n=2):
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.png"), images[i][:, :, ::-1])


def _annotate(tiny_dir, images_dir, out, *extra):
    return main(["annotate", "--images", str(images_dir), "--out", str(out),
                 "--config", str(tiny_dir / "config.json"), *extra])


def test_cli_reads_a_12_bit_png_scaled_like_the_thumbnail(tmp_path):
    values = np.arange(0, 4096, dtype=np.uint16).reshape(64, 64)
    cv2.imwrite(str(tmp_path / "scan.png"), values)
    rgb = read_rgb(tmp_path / "scan.png")
    want = (values * (255 / 4095)).astype(np.uint8)
    assert rgb.dtype == np.uint8 and all(np.array_equal(rgb[:, :, c], want) for c in range(3))
    assert rgb.max() == 255  # was 15: OpenCV's 8-bit read kept the top byte of 12 bits
    assert np.array_equal(to_uint8(np.array([70000, 0], dtype=np.int32)), [255, 0])
    # floats too: scaled by the brightest (300): 7.9 -> 6; below zero and NaN -> 0
    assert np.array_equal(to_uint8(np.array([7.9, 300.0, -1, np.nan], dtype=np.float32)), [6, 255, 0, 0])


def test_unreadable_files_are_skipped_and_the_rest_written(tiny_dir, images, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _good(folder, images)
    (folder / "empty.png").write_bytes(b"")
    (folder / "fake.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"junk" * 50)
    (tmp_path / "notes.txt").write_text("root:x:0:0\n")
    os.symlink(tmp_path / "notes.txt", folder / "link.png")
    out = tmp_path / "p.json"
    assert _annotate(tiny_dir, folder, out) == 0
    assert [r["image"] for r in json.loads(out.read_text())] == ["img0.png", "img1.png"]
    err = capsys.readouterr().err
    for name in ("empty.png", "fake.jpg", "link.png"):
        assert f"warning: skipped {name}: not a readable image" in err
    assert "Traceback" not in err


def test_nothing_readable_is_an_error(tiny_dir, tmp_path, capsys):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, tmp_path, tmp_path / "p.json")
    assert e.value.code == 2 and "none of the 1 images" in str(e.value)
    assert not (tmp_path / "p.json").exists()


def test_one_image_file_can_be_given(tiny_dir, images, tmp_path):
    _good(tmp_path, images, 1)
    assert _annotate(tiny_dir, tmp_path / "img0.png", tmp_path / "p.json") == 0
    assert [r["image"] for r in json.loads((tmp_path / "p.json").read_text())] == ["img0.png"]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SystemExit, match="is not an image format this reads") as e:
        _annotate(tiny_dir, tmp_path / "notes.txt", tmp_path / "p.json")
    assert e.value.code == 2


def _bad_config(tiny_dir, tmp_path, change) -> str:
    from ml.config import PipelineConfig

    data = PipelineConfig.from_file(tiny_dir / "config.json").to_dict()  # model paths made absolute
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("change, said", [
    (lambda d: d["detector"].update(box_threshold="high"), "detector.box_threshold: 'high' must be a number"),
    (lambda d: d["matcher"].update(top_k=True), "matcher.top_k: True must be an integer"),
    (lambda d: d.update(device="gpu"), "device: 'gpu' is not a device"),
])
def test_config_values_are_named(tiny_dir, images, tmp_path, capsys, change, said):
    _good(tmp_path, images, 1)
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, tmp_path, tmp_path / "p.json", "--config", _bad_config(tiny_dir, tmp_path, change))
    assert e.value.code == 2 and said in str(e.value)
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {e.value}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_named(tiny_dir, images, tmp_path):
    _good(tmp_path, images, 1)
    with pytest.raises(SystemExit, match="device: 'cuda', but this machine's torch cannot use CUDA") as e:
        _annotate(tiny_dir, tmp_path, tmp_path / "p.json", "--config",
                  _bad_config(tiny_dir, tmp_path, lambda d: d.update(device="cuda")))
    assert e.value.code == 2


def test_broken_json_config_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "broken.json").write_text("{oops")
    proc = subprocess.run([sys.executable, "-m", "ml", "annotate", "--images", str(tmp_path), "--out",
                           str(tmp_path / "p.json"), "--config", str(tmp_path / "broken.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: config file {str(tmp_path / 'broken.json')!r} cannot be parsed: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"]
