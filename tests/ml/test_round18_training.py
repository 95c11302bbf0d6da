"""A slow Mask R-CNN training reports progress by time, not only every 10 steps: a default ResNet-50
on a CPU (~10 s a step) showed 0 % for minutes, like a stuck run (black-box round 18)."""
from __future__ import annotations

from maskrcnn_samples import two_class_samples  # tests/ml is on the path (no package)


def test_slow_steps_report_progress_each_time_enough_time_passed(tmp_path, monkeypatch):
    from ml.training import maskrcnn
    from ml.training.maskrcnn import MaskRCNNTrainingConfig, train_maskrcnn

    monkeypatch.setattr(maskrcnn, "PROGRESS_EVERY_S", 0.0, raising=False)  # every step counts as slow
    seen = []
    cfg = MaskRCNNTrainingConfig(arch="tiny", min_size=64, max_size=96, steps=6, batch_size=2, rois_per_image=32,
                                 rpn_proposals=100)
    train_maskrcnn(two_class_samples(), tmp_path / "ck", cfg, progress=seen.append)
    assert seen == [(step + 1) / 6 for step in range(6)], seen


def test_the_cli_reads_images_as_the_workers_do(tmp_path):
    """`python -m ml annotate` skipped a float32 TIFF the workers pre-annotated ("not a readable
    image": OpenCV's assertion), and composited nothing under alpha; it decodes as the workers now,
    turned as a camera's EXIF says."""
    import numpy as np
    from PIL import Image

    from ml.cli import read_rgb
    from ml.decode import decode_rgb

    values = np.linspace(0, 300, 80 * 60, dtype=np.float32).reshape(60, 80)
    Image.fromarray(values, mode="F").save(tmp_path / "f32.tif")
    data = (tmp_path / "f32.tif").read_bytes()
    rgb = read_rgb(tmp_path / "f32.tif")
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8 and rgb.max() == 255
    assert np.array_equal(rgb, decode_rgb(data))
    rgba = np.zeros((10, 12, 4), np.uint8)  # wholly transparent: the workers' neutral background
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cut.png")
    assert read_rgb(tmp_path / "cut.png")[0, 0].tolist() == [124, 116, 104]
    photo = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = photo.getexif()
    exif[0x0112] = 6  # "turn 90°"
    photo.save(tmp_path / "turned.jpg", exif=exif)
    assert read_rgb(tmp_path / "turned.jpg").shape == (40, 20, 3)
    assert decode_rgb((tmp_path / "turned.jpg").read_bytes()).shape == (20, 40, 3)  # uploads are stored turned


def test_a_single_file_of_another_format_is_named_as_such(tmp_path, tiny_dir):
    import pytest
    from PIL import Image

    from ml.cli import main

    Image.new("RGB", (8, 8)).save(tmp_path / "anim.gif")
    with pytest.raises(SystemExit) as exited:
        main(["annotate", "--images", str(tmp_path / "anim.gif"), "--out", str(tmp_path / "p.json"),
              "--config", str(tiny_dir / "config.json")])
    assert exited.value.code == 2 and "is not an image format this reads (.gif)" in str(exited.value), exited.value
