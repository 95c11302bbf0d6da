"""Every engine (gdino-sam2, sam3, maskrcnn) through the same tests: registry, tiny models saved
and loaded back through the real loaders, the CLI writing predictions.json, and masks that are
the models' own output."""
import json

import cv2
import numpy as np
import pytest
import torch

from ml.cli import main
from ml.config import ENGINE_NAMES, PipelineConfig
from ml.engines import ENGINES, describe
from ml.errors import ConfigError, ModelLoadError
from ml.masks import decode_native_rle, mask_iou
from ml.tiny import TINY_MASKRCNN_CLASSES

NATIVE_KEYS = {"bbox_xyxy", "class", "score_metric", "score_vlm", "vlm_class", "ranked", "mask_rle"}


@pytest.fixture(scope="module")
def engine_pipes(tiny_dir):
    """One pipeline per engine, built from its tiny config_<engine>.json."""
    from ml.pipeline import Pipeline

    return {name: Pipeline.from_config(PipelineConfig.from_file(tiny_dir / f"config_{name}.json"))
            for name in ENGINE_NAMES}


@pytest.fixture(scope="module")
def cli_dirs(tmp_path_factory, images):
    root = tmp_path_factory.mktemp("engines_cli")
    (root / "imgs").mkdir()
    (root / "gallery").mkdir()
    for i, im in enumerate(images[:2]):
        cv2.imwrite(str(root / "imgs" / f"img{i}.png"), im[:, :, ::-1])
    for i, name in enumerate(["hammer", "wrench"]):
        cv2.imwrite(str(root / "gallery" / f"{name}.jpg"), images[i][10:60, 10:70, ::-1])
    return root


def test_registry_lists_every_engine_with_its_needs(capsys):
    assert tuple(ENGINES) == ENGINE_NAMES == ("gdino-sam2", "sam3", "maskrcnn")
    rows = {r["name"]: r for r in describe()}
    assert rows["sam3"]["gated"] and rows["sam3"]["hub_ids"] == ["facebook/sam3"] and rows["sam3"]["text_prompts"]
    assert rows["maskrcnn"]["trainable"] and not rows["maskrcnn"]["text_prompts"]
    assert not rows["gdino-sam2"]["gated"] and rows["gdino-sam2"]["text_prompts"]
    assert main(["engines", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == list(ENGINE_NAMES)
    assert main(["engines"]) == 0
    text = capsys.readouterr().out
    assert "GATED" in text and "maskrcnn: " in text and "closed set" in text


def test_unknown_engine_names_the_choices():
    with pytest.raises(ConfigError, match=r"engine: 'yolo'.*gdino-sam2, sam3, maskrcnn"):
        PipelineConfig.from_dict({"engine": "yolo"})
    with pytest.raises(ConfigError, match=r"sam3: unknown setting\(s\) \['treshold'\]"):
        PipelineConfig.from_dict({"sam3": {"treshold": 0.3}})
    with pytest.raises(ConfigError, match="maskrcnn.batch_size"):
        PipelineConfig.from_dict({"maskrcnn": {"batch_size": 0}})


def test_tiny_configs_per_engine_resolve_every_model(tiny_dir):
    base = json.loads((tiny_dir / "config.json").read_text())
    assert base["engine"] == "gdino-sam2" and {"sam3", "maskrcnn", "detector", "segmenter"} <= set(base)
    for name in ENGINE_NAMES:
        cfg = PipelineConfig.from_file(tiny_dir / f"config_{name}.json")
        assert cfg.engine == name
        assert cfg.sam3.model == str((tiny_dir / "sam3").resolve())  # relative paths resolve like the others
        assert cfg.maskrcnn.model == str((tiny_dir / "maskrcnn").resolve())
    assert (tiny_dir / "sam3" / "config.json").is_file() and (tiny_dir / "maskrcnn" / "maskrcnn.json").is_file()


def test_missing_engine_models_name_the_setting(tmp_path):
    from ml.pipeline import Pipeline

    for name, key in (("sam3", "sam3.model"), ("maskrcnn", "maskrcnn.model")):
        cfg = PipelineConfig.from_dict({"engine": name, "device": "cpu", name: {"model": str(tmp_path / "nope")}})
        with pytest.raises(ModelLoadError, match=key.replace(".", r"\.")):
            Pipeline.from_config(cfg)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_cli_annotate_writes_the_same_predictions_json(engine, tiny_dir, cli_dirs):
    out = cli_dirs / engine / "predictions.json"
    assert main(["annotate", "--images", str(cli_dirs / "imgs"), "--gallery", str(cli_dirs / "gallery"),
                 "--out", str(out), "--config", str(tiny_dir / f"config_{engine}.json"), "--prompt", "tool"]) == 0
    data = json.loads(out.read_text())
    assert [d["image"] for d in data] == ["img0.png", "img1.png"]
    for rec in data:
        assert rec["width"] == 128 and rec["height"] == 96 and rec["detections"]
        for det in rec["detections"]:
            assert set(det) == NATIVE_KEYS
            assert det["class"] in ("hammer", "wrench", "unknown")  # the gallery matcher classifies
            assert decode_native_rle(det["mask_rle"]).shape == (96, 128)
            if engine == "maskrcnn":
                assert det["vlm_class"] in TINY_MASKRCNN_CLASSES  # the model's own class
            else:
                assert det["vlm_class"] == "tool" or engine == "gdino-sam2"
    assert (cli_dirs / engine / "timings.csv").read_text().count("\n") == 3


def test_sam3_masks_are_the_models_own(engine_pipes, images):
    """Our path (vision encoder once, features repeated per prompt, only kept masks upsampled)
    gives the masks of the plain transformers forward + post-processing, prompt by prompt."""
    pipe = engine_pipes["sam3"]
    eng = pipe.engine
    calls = []
    hook = eng.model.vision_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        res = pipe.annotate(images[:2], None, ["tool", "hammer"])
    finally:
        hook.remove()
    assert len(calls) == 1  # two images, two prompts: one vision forward (batch_size 2)
    for im, r in zip(images[:2], res):
        assert r.detections
        for d in r.detections:
            assert d.det_label in ("tool", "hammer") and d.det_phrase == d.det_label
            inputs = eng.processor(images=[im], text=[d.det_label], return_tensors="pt")
            with torch.inference_mode():
                out = eng.model(**inputs)
            ref = eng.processor.post_process_instance_segmentation(
                out, threshold=eng.score_threshold, mask_threshold=pipe.cfg.sam3.mask_threshold,
                target_sizes=[im.shape[:2]])[0]
            k = int(np.argmin(np.abs(ref["scores"].numpy() - d.det_score)))
            assert abs(float(ref["scores"][k]) - d.det_score) < 1e-4
            assert mask_iou(ref["masks"][k].numpy().astype(bool), d.mask) > 0.99


def test_maskrcnn_masks_and_classes_are_the_models_own(engine_pipes, images):
    import sys

    pipe = engine_pipes["maskrcnn"]
    eng = pipe.engine
    # roi_align runs eagerly: torchvision's lazy torch.compile wrapper (45-230 s on CPU) is gone
    assert not hasattr(sys.modules["torchvision.ops.roi_align"]._roi_align, "__wrapped__")
    r = pipe.annotate(images[:1], None, ["ignored: closed set"])[0]
    assert 0 < len(r.detections) <= pipe.cfg.maskrcnn.max_detections
    x = torch.from_numpy(images[0]).permute(2, 0, 1).float() / 255.0
    with torch.inference_mode():
        ref = eng.model([x])[0]
    for k, d in enumerate(r.detections):
        assert d.det_label == TINY_MASKRCNN_CLASSES[int(ref["labels"][k]) - 1]
        assert d.det_score == pytest.approx(float(ref["scores"][k]), abs=1e-5)
        assert np.array_equal(d.mask, (ref["masks"][k, 0] > 0.5).numpy())


@pytest.mark.parametrize("engine", ["sam3", "maskrcnn"])
def test_boxes_given_goes_through_sam2_loaded_on_first_use(engine, engine_pipes, images):
    pipe = engine_pipes[engine]
    box = [20.0, 15.0, 70.0, 60.0]
    r = pipe.annotate(images[:1], None, boxes=[[box]])[0]
    assert pipe.engine._segmenter is not None  # SAM 2, loaded by this call
    (d,) = r.detections
    assert d.prompt_xyxy == box and d.mask.shape == (96, 128)
    # the same box through the gdino-sam2 engine's (eagerly loaded) SAM 2 gives the same mask
    same = engine_pipes["gdino-sam2"].annotate(images[:1], None, boxes=[[box]])[0].detections[0]
    assert np.array_equal(d.mask, same.mask)
