"""GroundingDINO post-processing on the tiny detector: box_threshold cuts boxes, text_threshold
only chooses each box's phrase (the prompt words whose token score is above it)."""
from __future__ import annotations

import dataclasses

import pytest

PROMPTS = ["tool", "hammer"]


@pytest.fixture(scope="module")
def detect(pipeline):
    from ml.detector import Detector

    base = pipeline.detector

    def run(images, text_threshold: float, prompts=PROMPTS):
        cfg = dataclasses.replace(base.cfg, box_threshold=0.05, text_threshold=text_threshold)
        return Detector(base.model, base.processor, cfg, base.device, base.dtype).detect(images, prompts)

    return run


def _geometry(boxes):
    # Scores rounded: one image alone and the same image in a batch differ in the 7th decimal
    # (float32 sums in another order; CI, stop 28). Boxes come from the same scores, so they match.
    return [[([round(v, 3) for v in b.xyxy], round(b.score, 5), b.label) for b in bs] for bs in boxes]


def test_phrase_is_made_of_prompt_words(detect, images):
    boxes = detect(images, 0.0)
    assert any(boxes), "the tiny detector proposed nothing"
    for b in (b for bs in boxes for b in bs):
        # Every prompt token scores above 0, so all of them make the phrase, in prompt order.
        assert b.phrase == "tool hammer"
        assert b.label in PROMPTS


def test_text_threshold_changes_the_phrase_not_the_boxes(detect, images):
    low = detect(images, 0.0)
    high = detect(images, 1.0)  # no token can score above 1
    # Before the fix text_threshold was a second score cut-off: at 1.0 no box survived.
    assert _geometry(high) == _geometry(low)
    assert all(b.phrase == "" for bs in high for b in bs)

    # Just under a box's own score only its best token is left (the tiny model's other prompt
    # token scores lower), so the phrase is the box's label.
    at = next(i for i, bs in enumerate(low) if bs)
    first = low[at][0]
    tight = detect([images[at]], first.score - 1e-6)[0]
    assert _geometry([tight]) == _geometry([low[at]])
    assert tight[0].phrase == first.label


def test_phrase_reaches_the_detection_and_the_native_file(pipeline, images, gallery):
    from ml.formats import to_native

    results = pipeline.annotate(images[:1], gallery, prompts=PROMPTS)
    dets = results[0].detections
    assert dets and all(d.det_phrase == "tool hammer" for d in dets)  # tiny config: text_threshold 0
    assert {d["vlm_class"] for d in to_native(["a.png"], results)[0]["detections"]} == {"tool hammer"}
