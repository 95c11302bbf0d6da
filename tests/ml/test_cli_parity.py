"""Seed-000 parity of `python -m ml annotate`: --limit, <stem>_ann.jpg visualizations and --debug DIR,
with the session's tiny models through the real CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ml.cli import main
from ml.masks import decode_native_rle, encode_native_rle
from ml.tiny import synthetic_image
from ml.visualize import MASK_ALPHA, class_color, draw_annotations

NAMES = ["c_last.png", "a_first.png", "b_second.jpg"]  # sorted: a_first, b_second, c_last


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_dir):
    root = tmp_path_factory.mktemp("parity")
    (root / "imgs").mkdir()
    (root / "gallery" / "молоток").mkdir(parents=True)  # ImageFolder layout, a Cyrillic class as in seed 000
    (root / "gallery" / "wrench").mkdir()
    for i, name in enumerate(NAMES):
        cv2.imwrite(str(root / "imgs" / name), synthetic_image(10 + i, 120, 160)[:, :, ::-1])
    for i, rel in enumerate(["молоток/1.png", "молоток/2.png", "wrench/1.png"]):
        cv2.imwrite(str(root / "gallery" / rel), synthetic_image(30 + i)[10:60, 10:70, ::-1])
    out = root / "out" / "predictions.json"
    rc = main(["annotate", "--images", str(root / "imgs"), "--gallery", str(root / "gallery"), "--out", str(out),
               "--config", str(tiny_dir / "config.json"), "--limit", "2", "--visualize", "--debug", str(root / "debug")])
    assert rc == 0
    return root, json.loads(out.read_text(encoding="utf-8"))


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_limit_takes_the_first_images_in_sorted_order(run):
    root, preds = run
    assert [p["image"] for p in preds] == ["a_first.png", "b_second.jpg"]
    assert len((root / "out" / "timings.csv").read_text().strip().splitlines()) == 3


def test_ann_jpg_per_image_draws_where_the_masks_are(run):
    root, preds = run
    assert sorted(p.name for p in (root / "out").glob("*_ann.jpg")) == ["a_first_ann.jpg", "b_second_ann.jpg"]
    for rec in preds:
        stem = rec["image"].rsplit(".", 1)[0]
        path = root / "out" / f"{stem}_ann.jpg"
        assert path.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
        ann, orig = read_rgb(path).astype(int), read_rgb(root / "imgs" / rec["image"]).astype(int)
        assert ann.shape == orig.shape == (rec["height"], rec["width"], 3)
        assert rec["detections"]
        for det in rec["detections"]:
            m = decode_native_rle(det["mask_rle"])
            if m.any():
                assert np.abs(ann - orig)[m].mean() > 8, "the mask is not drawn"


def test_overlay_blends_mask_outlines_box_and_label():
    img = np.full((120, 160, 3), 200, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[50:100, 60:120] = True
    det = {"bbox_xyxy": [60, 50, 120, 100], "class": "молоток", "score_metric": 0.87,
           "mask_rle": encode_native_rle(mask)}
    out = draw_annotations(img, [det]).astype(int)
    color = np.array(class_color("молоток"))
    inside = out[75, 90]  # mask interior, away from outline and label
    assert np.abs(inside - (200 * (1 - MASK_ALPHA) + color * MASK_ALPHA)).max() <= 1
    assert np.abs(out[50, 90] - color).max() <= 1  # box edge / outline: opaque class colour
    assert (out[5:20, 0:40] == 200).all() and (out[110:, 130:] == 200).all()  # untouched away from it
    assert (out[35:50, 60:120] != 200).any()  # "class score" label above the box
    assert class_color("молоток") == class_color("молоток") != class_color("wrench")


def test_debug_folder_agrees_with_predictions(run, tiny_dir, pipeline):
    from ml.gallery import Gallery

    root, preds = run
    gallery = Gallery.from_dir(root / "gallery", pipeline, pipeline.cfg.embedder.background)
    assert sorted(p.name for p in (root / "debug").iterdir()) == ["a_first", "b_second"]
    for rec in preds:
        folder = root / "debug" / rec["image"].rsplit(".", 1)[0]
        sim = json.loads((folder / "similarities.json").read_text(encoding="utf-8"))
        assert sim["image"] == rec["image"] and len(sim["objects"]) == len(rec["detections"])
        for obj, det in zip(sim["objects"], rec["detections"]):
            assert obj["decision"] == det["class"] and obj["bbox_xyxy"] == det["bbox_xyxy"]
            assert [(t["class"], t["score"]) for t in obj["top_k"]] == [(r["name"], r["score"]) for r in det["ranked"]]
            assert obj["score"] == det["score_metric"] and isinstance(obj["margin"], float)
            mask_png = cv2.imread(str(folder / obj["mask"]), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(mask_png > 0, decode_native_rle(det["mask_rle"]))
            crop = read_rgb(folder / obj["crop"])
            assert crop.shape == (64, 64, 3)  # the tiny embedder's input size
            # the saved crop IS what the embedder saw: re-embedding it gives the reported similarity
            f = pipeline.embed_crops([np.ascontiguousarray(crop)])[0]
            top = obj["top_k"][0]
            sims = [float(gallery.embeddings[i] @ f) for i, l in enumerate(gallery.labels) if l == top["class"]]
            assert max(sims) == pytest.approx(top["score"], abs=1e-4)
            for t in obj["top_k"]:
                src = root / "gallery" / t["exemplar_id"]
                assert (folder / t["exemplar_file"]).read_bytes() == src.read_bytes()
            best = obj["best_exemplar"]
            assert best["class"] == (det["class"] if det["class"] != "unknown" else obj["top_k"][0]["class"])


def test_bad_arguments_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["annotate", "--images", str(tmp_path), "--out", str(tmp_path / "p.json"), "--limit", "0"])
    assert "positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not found"):
        main(["annotate", "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "p.json")])
    with pytest.raises(SystemExit, match="no images"):
        main(["annotate", "--images", str(tmp_path), "--out", str(tmp_path / "p.json")])
