import numpy as np
import pytest
import torch

from ml.config import PipelineConfig
from ml.embedders import load_embedder
from ml.tiny import SEED001_CLASSES


@pytest.fixture(scope="module")
def crops(images):
    return [images[0][10:60, 20:90], images[1][:40, :40], images[2]]


def test_onnx_classifier_seed001_interface(tiny_dir, crops):
    import onnxruntime as ort

    cfg = PipelineConfig.from_file(tiny_dir / "config_onnx.json")
    sess = ort.InferenceSession(cfg.embedder.model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [112, 112, 3]
    assert [o.name for o in sess.get_outputs()] == ["p", "feature"]
    emb = load_embedder(cfg.embedder, torch.device("cpu"))
    x = emb.preprocess(crops)
    assert x.shape == (3, 112, 112, 3) and x.dtype == np.uint8
    out = emb.embed(crops)
    assert out.features.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(out.features, axis=1), 1, atol=1e-5)
    assert out.probs.shape == (3, 11) and np.allclose(out.probs.sum(1), 1, atol=1e-4)
    assert out.class_names == SEED001_CLASSES


def test_onnx_nchw_float_layout(tiny_dir, crops):
    cfg = PipelineConfig.from_file(tiny_dir / "config_onnx.json")
    emb = load_embedder(cfg.embedder, torch.device("cpu"))
    # The preprocessing alone (the tiny model is NHWC: loaded so, it is refused, test_round16_config).
    emb.cfg.layout, emb.cfg.input_dtype = "NCHW", "float32"
    emb.cfg.mean, emb.cfg.std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    x = emb.preprocess(crops)
    assert x.shape == (3, 3, 112, 112) and x.dtype == np.float32


def test_onnx_pipeline_both_modes(tiny_dir, images):
    from ml.gallery import Gallery
    from ml.pipeline import Pipeline

    cfg = PipelineConfig.from_file(tiny_dir / "config_onnx.json")
    cfg.embedder.classify_with = "probs"
    pipe = Pipeline.from_config(cfg)
    r = pipe.annotate(images[:1], None)
    assert all(d.match.label in SEED001_CLASSES for d in r[0].detections)
    pipe.cfg.embedder.classify_with = "gallery"  # same loaded models, feature matching mode
    g = Gallery(pipe.embed_crops([images[1], images[2]]), ["x", "y"], [0, 1], pipe.embedder_version)
    r = pipe.annotate(images[:1], g)
    assert all(d.match.label in ("x", "y") for d in r[0].detections)
    assert r[0].detections[0].embedding.shape == (512,)


def test_projection_head_embedder(tiny_dir, crops):
    cfg = PipelineConfig.from_file(tiny_dir / "config_head.json")
    emb = load_embedder(cfg.embedder, torch.device("cpu"))
    out = emb.embed(crops)
    assert out.features.shape == (3, 24) and emb.version.startswith("head:")
    np.testing.assert_allclose(np.linalg.norm(out.features, axis=1), 1, atol=1e-5)


def test_masked_vs_bbox_crops(images):
    from ml.embedders.crops import make_crop, square_resize

    m = np.zeros(images[0].shape[:2], bool)
    m[20:40, 30:50] = True
    c = make_crop(images[0], [25, 15, 55, 45], m, mode="masked", background=(1, 2, 3))
    assert c.shape == (30, 30, 3) and tuple(c[0, 0]) == (1, 2, 3)
    b = make_crop(images[0], [25, 15, 55, 45], m, mode="bbox")
    assert np.array_equal(b, images[0][15:45, 25:55])
    assert square_resize(images[0][:10, :40], 32).shape == (32, 32, 3)


def test_timm_batching_is_deterministic(pipeline, crops):
    together = pipeline.embed_crops(crops)
    alone = np.concatenate([pipeline.embed_crops([c]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-5)
