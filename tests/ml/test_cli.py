import csv
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from ml.cli import main
from ml.masks import decode_native_rle, decode_rle, mask_iou


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, images):
    root = tmp_path_factory.mktemp("cli")
    (root / "imgs").mkdir()
    (root / "gallery").mkdir()
    for i, im in enumerate(images[:2]):
        cv2.imwrite(str(root / "imgs" / f"img{i}.png"), im[:, :, ::-1])
    for i, name in enumerate(["hammer", "wrench", "pliers"]):
        cv2.imwrite(str(root / "gallery" / f"{name}.jpg"), images[i][10:60, 10:70, ::-1])
    return root


def test_cli_annotate_native(dirs, tiny_dir, capsys):
    out = dirs / "native" / "predictions.json"
    assert main(["annotate", "--images", str(dirs / "imgs"), "--gallery", str(dirs / "gallery"),
                 "--out", str(out), "--config", str(tiny_dir / "config.json")]) == 0
    data = json.loads(out.read_text())
    assert [d["image"] for d in data] == ["img0.png", "img1.png"]
    for rec in data:
        assert rec["width"] == 128 and rec["height"] == 96 and rec["detections"]
        for det in rec["detections"]:
            assert set(det) >= {"bbox_xyxy", "class", "score_metric", "score_vlm", "vlm_class", "ranked", "mask_rle"}
            assert det["class"] in ("hammer", "wrench", "pliers", "unknown")
            assert {"name", "score"} <= set(det["ranked"][0])
            rle = det["mask_rle"]
            assert rle["order"] == "row-major" and rle["size"] == [96, 128]
            assert all(isinstance(c, int) for c in rle["counts"]) and sum(rle["counts"]) == 96 * 128
            m = decode_native_rle(rle)
            x1, y1, x2, y2 = det["bbox_xyxy"]
            if m.any():
                ys, xs = np.nonzero(m)
                assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [x1, y1, x2, y2]
    rows = list(csv.DictReader(open(dirs / "native" / "timings.csv")))
    assert len(rows) == 2 and {"detect_ms", "segment_ms", "embed_ms", "match_ms", "total_ms"} <= set(rows[0])


def test_cli_annotate_coco_matches_native(dirs, tiny_dir, monkeypatch):
    monkeypatch.setenv("RAZMETKA_ML_CONFIG", str(tiny_dir / "config.json"))  # config from env
    out = dirs / "coco" / "coco.json"
    assert main(["annotate", "--images", str(dirs / "imgs"), "--gallery", str(dirs / "gallery"),
                 "--out", str(out), "--format", "coco"]) == 0
    coco = COCO(str(out))
    assert len(coco.getImgIds()) == 2 and coco.getAnnIds()
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert isinstance(ann["segmentation"]["counts"], str)
    assert coco.annToMask(ann).sum() == ann["area"]
    coco.loadRes(json.loads(out.read_text())["annotations"])  # also valid COCO results
    native_path = dirs / "native" / "predictions.json"
    if native_path.exists():
        native = json.loads(native_path.read_text())
        m_native = decode_native_rle(native[0]["detections"][0]["mask_rle"])
        assert mask_iou(m_native, decode_rle(ann["segmentation"])) == 1.0
    assert (dirs / "coco" / "timings.csv").is_file()


def test_cli_tiny_models(tmp_path, capsys):
    assert main(["tiny-models", "--out", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "MEANINGLESS" in out
    assert (tmp_path / "t" / "config.json").is_file()
