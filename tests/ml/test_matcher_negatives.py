"""Hard negatives and the embedding transform of ml.matcher.Matcher."""
import numpy as np

from ml.gallery import Gallery
from ml.matcher import Matcher, Negatives


def unit(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def gallery() -> Gallery:
    return Gallery(np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]), ["A", "B"], ["a", "b"])


# The crop a reviewer moved from A to B: closer to A's exemplar than to B's.
CORRECTED = unit(1, 0.8, 0.5, 0)


def test_a_negative_demotes_its_class_for_a_crop_near_it_and_leaves_others_untouched():
    plain = Matcher(unknown_threshold=0.3)
    near = unit(1, 0.8, 0.45, 0)  # almost the corrected crop
    far = unit(1, 0.1, 0, 0.1)  # a clean A, much closer to A's exemplar than to the negative
    before = plain.match(np.stack([near, far]), gallery())
    assert [r.label for r in before] == ["A", "A"]

    learned = plain.with_negatives(np.stack([CORRECTED]), ["A"])
    assert plain.negatives is None, "with_negatives returns a copy"
    after = learned.match(np.stack([near, far]), gallery())
    scores = {label: score for label, score, _ in after[0].ranked}
    sim_neg, sim_a = float(unit(*near) @ CORRECTED), float(near @ unit(1, 0, 0, 0))
    assert np.isclose(scores["A"], sim_a - (sim_neg - sim_a), atol=1e-5)
    assert after[0].label == "B", "the demoted class loses to the next one"
    # The clean A is nearer A's exemplar than the negative: bit-identical result.
    assert after[1].label == "A" and after[1].score == before[1].score and after[1].ranked == before[1].ranked


def test_negatives_ride_on_the_gallery_like_parents_and_only_hit_their_class():
    g = gallery()
    g.negatives = Negatives(np.stack([CORRECTED]), ["B"])  # a negative of B does nothing to A
    near = unit(1, 0.8, 0.45, 0)
    base = Matcher(unknown_threshold=0.3).match(np.stack([near]), gallery())[0]
    got = Matcher(unknown_threshold=0.3).match(np.stack([near]), g)[0]
    assert got.label == "A" and np.isclose(got.score, base.score)
    b = dict((label, s) for label, s, _ in got.ranked)["B"]
    assert b < dict((label, s) for label, s, _ in base.ranked)["B"]


def test_hierarchy_sees_the_demoted_scores():
    g = Gallery(np.stack([unit(1, 0, 0, 0), unit(0.9, 0.1, 0, 0), unit(0, 1, 0, 0)]), ["t", "t-1", "u"], [1, 2, 3])
    g.parents = {"t-1": "t"}
    crop = unit(1, 0.7, 0, 0)
    plain = Matcher(unknown_threshold=0.0).match(np.stack([crop]), g)[0]
    best = float(crop @ unit(0.9, 0.1, 0, 0))  # the type scores its instance's exemplar
    assert plain.type_label == "t" and np.isclose(plain.ranked[0][1], best)
    m = Matcher(unknown_threshold=0.0).with_negatives(np.stack([crop, crop]), ["t", "t-1"])
    got = m.match(np.stack([crop]), g)[0]
    assert np.isclose(got.ranked[0][1], best - (1.0 - best), atol=1e-5)


def test_transform_is_applied_to_crops_and_exemplars():
    # A projection that drops the last axis: there the crop looks like B, in the projected space like A.
    g = Gallery(np.stack([unit(1, 0, 0), unit(0, 1, 1)]), ["A", "B"], [0, 1])
    crop = np.stack([unit(0.5, 0, 1)])
    assert Matcher(unknown_threshold=0.0).match(crop, g)[0].label == "B"
    projected = Matcher(unknown_threshold=0.0, transform=lambda x: np.asarray(x)[:, :2] + np.array([0, 0.01]))
    result = projected.match(crop, g)[0]
    assert result.label == "A" and result.score > 0.99
