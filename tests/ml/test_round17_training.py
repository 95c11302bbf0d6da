"""A Mask R-CNN training whose loss goes to NaN says what to change through the API (`lr`): it said
"lower the learning rate", which no setting could do (black-box round 17 J2). Warm-up and gradient
clipping keep a high rate from blowing up."""
from __future__ import annotations

import pytest

from maskrcnn_samples import two_class_samples  # tests/ml is on the path (no package)


def _cfg(**kw):
    from ml.training.maskrcnn import MaskRCNNTrainingConfig

    return MaskRCNNTrainingConfig(**{"arch": "tiny", "min_size": 64, "max_size": 96, "steps": 12, "batch_size": 2,
                                     "rois_per_image": 32, "rpn_proposals": 100, **kw})


def test_a_diverged_training_names_the_setting_to_lower(tmp_path):
    from ml.errors import TrainingRefused
    from ml.training.maskrcnn import train_maskrcnn

    with pytest.raises(TrainingRefused) as refused:
        train_maskrcnn(two_class_samples(), tmp_path / "ck", _cfg(lr=1e4))
    assert "diverged" in str(refused.value) and "(lr, 10000 now: try 1000)" in str(refused.value)


def test_warm_up_and_clipping_tame_a_high_rate(tmp_path):
    """lr 0.5 from the first step: the last loss was ~19 (blowing up); warmed up and clipped ~2."""
    from ml.training.maskrcnn import train_maskrcnn

    raw = train_maskrcnn(two_class_samples(), tmp_path / "raw", _cfg(lr=0.5, warmup_steps=1, clip_norm=0.0))
    tamed = train_maskrcnn(two_class_samples(), tmp_path / "tamed", _cfg(lr=0.5))
    assert tamed.metrics["last_loss"] < raw.metrics["last_loss"] / 3, (tamed.metrics["last_loss"], raw.metrics["last_loss"])


def test_a_config_file_with_a_repeated_key_is_refused(tmp_path):
    """'"device": "cpu", …, "device": "cuda"' took the last value without a word (a yaml file with a
    repeated key is refused)."""
    from ml.config import PipelineConfig
    from ml.errors import ConfigError

    path = tmp_path / "config.json"
    path.write_text('{"device": "cpu", "detector": {"box_threshold": 0.3, "box_threshold": 0.4}}')
    with pytest.raises(ConfigError) as refused:
        PipelineConfig.from_file(path)
    assert "'box_threshold' is given twice" in str(refused.value) and str(path) in str(refused.value)
