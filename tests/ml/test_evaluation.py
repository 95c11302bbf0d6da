"""ml.evaluation on hand-made ground truth and predictions whose metrics are known."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ml.evaluation import auto_accept, evaluate, match_objects

H, W = 40, 60


def rect(x0, y0, x1, y1):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


BOXES = [(2, 2, 12, 12), (20, 5, 35, 20), (40, 20, 58, 38)]


def gt_image(image_id, labels):
    return {"image_id": image_id, "width": W, "height": H,
            "objects": [{"label": lab, "mask_rle": rect(*b)} for lab, b in zip(labels, BOXES)]}


def pred(label, box, score=0.9, class_score=0.9):
    return {"label": label, "mask_rle": rect(*box), "score": score, "class_score": class_score}


def test_perfect_predictions_score_one():
    gt = [gt_image(1, ["hammer", "wrench", "hammer"])]
    preds = [{"image_id": 1, "objects": [pred(lab, b) for lab, b in zip(["hammer", "wrench", "hammer"], BOXES)]}]
    m = evaluate(gt, preds)
    for kind in ("box", "mask"):
        for mode in ("per_class", "agnostic"):
            assert m["ap"][kind][mode]["ap"] == pytest.approx(1.0)
    assert m["class_accuracy"] == 1.0 and m["matched"] == 3
    assert m["per_class"]["hammer"] == {"gt": 2, "tp": 2, "fp": 0, "precision": 1.0, "recall": 1.0}
    assert m["auto_accept"]["fraction"] == 1.0 and m["auto_accept"]["threshold"] == pytest.approx(0.9)


def test_wrong_class_costs_accuracy_and_per_class_ap_but_not_agnostic_ap():
    gt = [gt_image(1, ["hammer", "wrench", "hammer"])]
    # The third object is found with the right mask but called a wrench; a stray low-score box too.
    objects = [pred("hammer", BOXES[0], 0.9, 0.9), pred("wrench", BOXES[1], 0.8, 0.8),
               pred("wrench", BOXES[2], 0.7, 0.3), pred("hammer", (0, 30, 5, 39), 0.1, 0.9),
               pred("unknown", (50, 0, 59, 5), 0.05, 0.1)]
    m = evaluate(gt, [{"image_id": 1, "objects": objects}])
    assert m["matched"] == 3 and m["class_accuracy"] == pytest.approx(2 / 3)
    assert m["ap"]["mask"]["agnostic"]["ap50"] == pytest.approx(1.0)  # every GT found before any stray box
    assert m["ap"]["mask"]["per_class"]["ap"] < 0.9
    assert m["per_class"]["hammer"] == {"gt": 2, "tp": 1, "fp": 1, "precision": 0.5, "recall": 0.5}
    assert m["per_class"]["wrench"] == {"gt": 1, "tp": 1, "fp": 1, "precision": 0.5, "recall": 1.0}
    # Matched, classified predictions by class score: 0.9 ok, 0.8 ok, 0.3 wrong -> cut above 0.3.
    assert m["auto_accept"]["threshold"] == pytest.approx(0.8)
    assert m["auto_accept"]["fraction"] == pytest.approx(2 / 3)


def test_ap_agrees_with_cocoeval_on_a_known_precision_recall_curve():
    # Two images, two GT each (one class); predictions ranked: TP, FP, TP, TP(miss IoU) ->
    # precision/recall points: (1, .25), (.5, .25), (.67, .5), never more recall.
    gt = [gt_image(1, ["a", "a"]), gt_image(2, ["a", "a"])]
    preds = [
        {"image_id": 1, "objects": [pred("a", BOXES[0], 0.9), pred("a", (45, 0, 59, 10), 0.8)]},
        {"image_id": 2, "objects": [pred("a", BOXES[1], 0.7), pred("a", (0, 25, 10, 39), 0.6)]},
    ]
    m = evaluate(gt, preds)
    # COCO's 101-point interpolated precision: 1.0 up to recall .25, .667 up to .5, 0 after.
    expected = (26 * 1.0 + 25 * (2 / 3)) / 101
    assert m["ap"]["box"]["per_class"]["ap50"] == pytest.approx(expected, abs=1e-3)
    assert m["ap"]["mask"]["per_class"]["ap50"] == pytest.approx(expected, abs=1e-3)


def test_no_predictions_and_instances():
    gt = [gt_image(1, ["screwdriver-1234", "screwdriver-77", "hammer"])]
    m = evaluate(gt, [])
    assert m["ap"]["box"]["per_class"]["ap"] == 0.0 and m["class_accuracy"] is None
    assert m["auto_accept"] == {"precision_target": 0.95, "threshold": None, "fraction": 0.0, "accepted": 0, "precision": None}
    objects = [pred("screwdriver-77", BOXES[0]), pred("screwdriver-77", BOXES[1]), pred("hammer", BOXES[2])]
    parents = {"screwdriver-1234": "screwdriver", "screwdriver-77": "screwdriver"}
    m = evaluate(gt, [{"image_id": 1, "objects": objects}], parents=parents)
    assert m["class_accuracy"] == pytest.approx(2 / 3) and m["type_accuracy"] == 1.0


def test_matching_is_one_to_one_and_auto_accept_never_splits_ties():
    g = [{"label": "a", "mask_rle": rect(*BOXES[0])}]
    p = [pred("a", BOXES[0], 0.5), pred("a", BOXES[0], 0.9)]
    assert match_objects(g, p) == [(0, 1, 1.0)]
    # 20 correct at 0.9 and one wrong at 0.9: 95.2% at the tie; adding the 0.5 wrong one drops it.
    got = auto_accept([0.9] * 21 + [0.5], [True] * 20 + [False, False], n_gt=25)
    assert got["threshold"] == 0.9 and got["accepted"] == 21 and got["fraction"] == pytest.approx(21 / 25)
    assert auto_accept([0.9, 0.9], [True, False], n_gt=2)["threshold"] is None
