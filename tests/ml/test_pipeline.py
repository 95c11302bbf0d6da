import numpy as np

from ml.masks import decode_rle, mask_iou
from ml.matcher import Matcher


def test_tiny_models_are_loaded_through_real_loaders(pipeline, tiny_dir):
    from transformers import GroundingDinoForObjectDetection

    assert isinstance(pipeline.detector.model, GroundingDinoForObjectDetection)
    assert (tiny_dir / "grounding_dino" / "config.json").is_file()
    assert pipeline.segmenter.predictor.model.image_size == 128
    assert pipeline.embedder.version.startswith("timm:")
    assert pipeline.embedder.dim == 32


def test_annotate_end_to_end(pipeline, images, gallery):
    res = pipeline.annotate(images, gallery, prompts=["tool", "hammer"])
    assert len(res) == len(images)
    for im, r in zip(images, res):
        assert (r.height, r.width) == im.shape[:2]
        assert set(r.timings_ms) == {"detect", "segment", "embed", "match"}
        assert 0 < len(r.detections) <= pipeline.cfg.detector.max_detections
        for d in r.detections:
            m = decode_rle(d.mask_rle)
            assert m.shape == im.shape[:2] and int(m.sum()) == d.area
            assert d.det_label in ("tool", "hammer")
            assert d.embedding.dtype == np.float32 and abs(np.linalg.norm(d.embedding) - 1) < 1e-4
            assert d.match.label in {"hammer", "wrench", "pliers", "saw", "unknown"}
            assert len(d.match.ranked) == 3
            x1, y1, x2, y2 = d.bbox_xyxy
            assert 0 <= x1 < x2 <= r.width and 0 <= y1 < y2 <= r.height
            if d.area:  # tight box from the mask
                ys, xs = np.nonzero(m)
                assert [x1, y1, x2, y2] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_batched_and_reference_paths_agree(pipeline, images, gallery):
    bat = pipeline.annotate(images, gallery)
    ref = pipeline.annotate_reference(images, gallery)
    for a, b in zip(bat, ref):
        assert len(a.detections) == len(b.detections) > 0
        for da, db in zip(a.detections, b.detections):
            np.testing.assert_allclose(da.bbox_xyxy, db.bbox_xyxy, atol=1e-3)
            assert abs(da.det_score - db.det_score) < 1e-4
            assert mask_iou(da.mask, db.mask) >= 0.99
            assert da.match.label == db.match.label
            np.testing.assert_allclose(da.embedding, db.embedding, atol=1e-4)


def test_segment_boxes_given_mode_and_roi(pipeline, images):
    boxes = [[10, 10, 60, 50], [70, 30, 120, 90]]
    roi = pipeline.segment_boxes(images[0], boxes, roi_margin=0.2)
    assert len(roi) == 2
    for r in roi:
        assert r.mask.shape == images[0].shape[:2]
        x1, y1, x2, y2 = r.prompt_xyxy
        ys, xs = np.nonzero(r.mask)
        if len(xs):  # an ROI mask never leaves its grown crop
            assert xs.min() >= x1 - 0.2 * (x2 - x1) - 1 and xs.max() <= x2 + 0.2 * (x2 - x1) + 1
    # all boxes of an image in one call == one box at a time (whole image, no ROI)
    full = pipeline.segmenter.segment(images[0], boxes)
    one = [pipeline.segmenter.segment(images[0], [b])[0] for b in boxes]
    assert len(full) == 2
    for a, b in zip(full, one):
        assert mask_iou(a.mask, b.mask) >= 0.99
    # no margin given: the config's (a box drawn in the browser takes this path too)
    default = pipeline.segment_boxes(images[0], boxes)
    explicit = pipeline.segment_boxes(images[0], boxes, roi_margin=pipeline.cfg.segmenter.roi_margin)
    assert all(mask_iou(a.mask, b.mask) >= 0.99 for a, b in zip(default, explicit))
    # the image embedding stays reachable for click-to-refine
    full = pipeline.segmenter.segment(images[0], boxes)
    emb = pipeline.segmenter.image_embedding
    assert emb.shape[-1] == 128 // 16
    ref = pipeline.segmenter.refine(point_coords=np.array([[30, 30]]), point_labels=np.array([1]))
    assert ref.mask.shape == images[0].shape[:2]


def test_annotate_with_given_boxes(pipeline, images, gallery):
    r = pipeline.annotate(images[:2], gallery, boxes=[[[5, 5, 50, 40]], []])
    assert len(r[0].detections) == 1 and r[1].detections == []


def test_embed_crops_and_version(pipeline, images):
    e = pipeline.embed_crops([images[0][:30, :40], images[1]])
    assert e.shape == (2, 32) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert pipeline.embedder_version == pipeline.embedder_version  # stable string
    assert isinstance(pipeline.embedder_version, str)


def test_gallery_from_dir_flat_and_imagefolder(pipeline, tmp_path, images):
    import cv2

    from ml.gallery import Gallery

    flat = tmp_path / "flat"
    flat.mkdir()
    for i, name in enumerate(["hammer", "wrench"]):
        cv2.imwrite(str(flat / f"{name}.png"), images[i][:40, :40, ::-1])
    g = Gallery.from_dir(flat, pipeline)
    assert g.labels == ["hammer", "wrench"] and g.embeddings.shape == (2, 32)
    assert g.version == pipeline.embedder_version
    nested = tmp_path / "nested"
    for cls in ["a", "b"]:
        (nested / cls).mkdir(parents=True)
        for j in range(2):
            rgba = np.dstack([images[j][:30, :30, ::-1], np.full((30, 30), 255 * (j % 2), np.uint8)])
            cv2.imwrite(str(nested / cls / f"{j}.png"), rgba)
    g2 = Gallery.from_dir(nested, pipeline)
    assert g2.labels == ["a", "a", "b", "b"] and g2.exemplar_ids[0] == "a/0.png"
    p = tmp_path / "g.npz"
    g2.save(p)
    g3 = Gallery.load(p)
    assert g3.labels == g2.labels and np.allclose(g3.embeddings, g2.embeddings)


class CountingMatcher(Matcher):
    """A real Matcher that counts its calls (the pipeline must match each image once)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def match(self, *args, **kwargs):
        self.calls += 1
        return super().match(*args, **kwargs)


def test_annotate_matches_once_per_image_with_the_given_matcher(pipeline, images, gallery, monkeypatch):
    config_matcher = CountingMatcher(unknown_threshold=0.0, top_k=3)
    monkeypatch.setattr(pipeline, "matcher", config_matcher)
    job_matcher = CountingMatcher(unknown_threshold=2.0, top_k=1)  # a cosine never reaches 2: all unknown
    for run in (pipeline.annotate, pipeline.annotate_reference):
        job_matcher.calls = 0
        res = run(images, gallery, prompts=["tool"], matcher=job_matcher)
        assert job_matcher.calls == len(images) and config_matcher.calls == 0
        for r in res:
            assert "match" in r.timings_ms and r.detections
            for d in r.detections:
                assert d.match.label == "unknown" and len(d.match.ranked) == 1
    # without a matcher the config's is used (tiny config: top_k 3)
    r = pipeline.annotate(images[:1], gallery, prompts=["tool"])
    assert config_matcher.calls == 1 and len(r[0].detections[0].match.ranked) == 3


def _spy_sam_inputs(pipeline, monkeypatch) -> list:
    """Record the image sizes SAM 2's predictor encodes (the real predictor still runs)."""
    seen = []
    predictor = pipeline.segmenter.predictor
    real_single, real_batch = predictor.set_image, predictor.set_image_batch

    def set_image(image):
        seen.append(tuple(np.asarray(image).shape[:2]))
        return real_single(image)

    def set_image_batch(batch):
        seen.extend(tuple(np.asarray(im).shape[:2]) for im in batch)
        return real_batch(batch)

    monkeypatch.setattr(predictor, "set_image", set_image)
    monkeypatch.setattr(predictor, "set_image_batch", set_image_batch)
    return seen


def test_given_boxes_are_segmented_on_their_roi_grown_by_the_margin(pipeline, images, gallery, monkeypatch):
    from ml.config import SegmenterConfig
    from ml.segmenter import roi_crop

    assert pipeline.cfg.segmenter.roi_margin == SegmenterConfig().roi_margin == 0.1  # the documented default
    h, w = images[0].shape[:2]
    boxes = [[20, 10, 60, 50], [70, 30, 120, 90]]
    for margin in (None, 0.25):  # None: the config's margin
        seen = _spy_sam_inputs(pipeline, monkeypatch)
        res = pipeline.annotate(images[:1], gallery, boxes=[boxes], roi_margin=margin)
        m = 0.1 if margin is None else margin
        crops = [roi_crop(b, m, w, h) for b in boxes]
        # the box grown by the margin on each side, e.g. [20,10,60,50] at 0.1 -> x 16..64, y 6..54
        assert crops[0] == ((16, 6, 64, 54) if margin is None else (10, 0, 70, 60))
        assert seen == [(y2 - y1, x2 - x1) for x1, y1, x2, y2 in crops]
        dets = res[0].detections
        assert [d.prompt_xyxy for d in dets] == [[float(v) for v in b] for b in boxes]
        for d, (x1, y1, x2, y2) in zip(dets, crops):
            assert d.mask.shape == (h, w)
            ys, xs = np.nonzero(d.mask)
            if len(xs):  # an ROI mask never leaves its crop
                assert x1 <= xs.min() and xs.max() < x2 and y1 <= ys.min() and ys.max() < y2
        monkeypatch.undo()


def test_roi_margin_is_validated():
    import pytest

    from ml.config import PipelineConfig
    from ml.errors import ConfigError

    assert PipelineConfig.from_dict({"segmenter": {"roi_margin": None}}).segmenter.roi_margin is None
    for bad in (-0.1, "0.1", True):
        with pytest.raises(ConfigError, match="segmenter.roi_margin"):
            PipelineConfig.from_dict({"segmenter": {"roi_margin": bad}})
