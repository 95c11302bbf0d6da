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
