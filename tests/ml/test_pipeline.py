import numpy as np

from ml.masks import decode_rle, mask_iou


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
    full = pipeline.segment_boxes(images[0], boxes)
    roi = pipeline.segment_boxes(images[0], boxes, roi_margin=0.2)
    assert len(full) == len(roi) == 2
    for r in roi:
        assert r.mask.shape == images[0].shape[:2]
        x1, y1, x2, y2 = r.prompt_xyxy
        ys, xs = np.nonzero(r.mask)
        if len(xs):  # an ROI mask never leaves its grown crop
            assert xs.min() >= x1 - 0.2 * (x2 - x1) - 1 and xs.max() <= x2 + 0.2 * (x2 - x1) + 1
    # all boxes of an image in one call == one box at a time
    one = [pipeline.segment_boxes(images[0], [b])[0] for b in boxes]
    for a, b in zip(full, one):
        assert mask_iou(a.mask, b.mask) >= 0.99
    # the image embedding stays reachable for click-to-refine
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
