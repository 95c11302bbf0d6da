import numpy as np

from ml.gallery import Gallery
from ml.matcher import UNKNOWN, Matcher


def unit(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_every_exemplar_counts_not_the_class_mean():
    # class A has two very different exemplars; the query matches one of them exactly
    g = Gallery(np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0.6, 0.6, 0.5)]), ["A", "A", "B"], ["a1", "a2", "b1"])
    r = Matcher(unknown_threshold=0.5).match(np.stack([unit(0, 1, 0)]), g)[0]
    assert r.label == "A" and abs(r.score - 1.0) < 1e-6
    assert r.ranked[0][0] == "A" and r.ranked[0][2] == "a2"  # best exemplar id
    assert [x[0] for x in r.ranked] == ["A", "B"]


def test_unknown_threshold_and_margin():
    g = Gallery(np.stack([unit(1, 0, 0), unit(0, 1, 0)]), ["A", "B"], [0, 1])
    q = np.stack([unit(1, 0.02, 0), unit(0, 0, 1), unit(1, 0.95, 0)])
    r = Matcher(unknown_threshold=0.5, margin=0.1).match(q, g)
    assert r[0].label == "A"
    assert r[1].label == UNKNOWN  # too far from everything
    assert r[2].label == UNKNOWN and r[2].margin < 0.1  # ambiguous between A and B
    assert Matcher(unknown_threshold=0.5, margin=0.0).match(q, g)[2].label == "A"


def crafted():
    # object 0: X .90, Y .80 ; object 1: X .85, Y .10  -> greedy gives 0->X and 1->Y(.10)
    scores = np.array([[0.90, 0.80], [0.85, 0.10]], np.float32)
    return scores


def test_assignment_beats_greedy():
    s = crafted()
    m = Matcher(unknown_threshold=0.0, unique_per_image=True, min_assign_score=0.0)
    r = m.match_probs(s, ["X", "Y"])
    assert [x.label for x in r] == ["Y", "X"]
    total = s[0, 1] + s[1, 0]
    greedy = s[0, 0] + s[1, 1]
    assert total > greedy


def test_assignment_with_embeddings_and_min_score():
    g = Gallery(np.stack([unit(1, 0, 0), unit(0, 1, 0)]), ["X", "Y"], ["x", "y"])
    q = np.stack([unit(1, 0.9, 0), unit(1, 0.05, 0), unit(1, 0.1, 0.05)])
    r = Matcher(unknown_threshold=0.3, unique_per_image=True, min_assign_score=0.5).match(q, g)
    labels = [x.label for x in r]
    assert sorted(l for l in labels if l != UNKNOWN) == ["X", "Y"]
    assert labels.count(UNKNOWN) == 1  # 3 objects, 2 classes: the extra one is unknown, not dropped
    assert len(r) == 3
    assert labels[0] == "Y"  # object 0 takes Y so object 1 can have X


def test_unassigned_below_min_score_is_unknown():
    r = Matcher(unknown_threshold=0.0, unique_per_image=True, min_assign_score=0.5).match_probs(
        crafted(), ["X", "Y"])
    # optimum assigns 0->Y(.8), 1->X(.85): both above .5
    assert [x.label for x in r] == ["Y", "X"]
    r = Matcher(unknown_threshold=0.0, unique_per_image=True, min_assign_score=0.82).match_probs(
        crafted(), ["X", "Y"])
    assert [x.label for x in r] == [UNKNOWN, "X"]


def test_matcher_on_stored_numpy_embeddings_without_torch_models():
    rng = np.random.RandomState(0)
    g = Gallery(rng.randn(20, 16), [f"c{i % 4}" for i in range(20)], list(range(20)))
    stored = rng.randn(7, 16).astype(np.float32)
    r = Matcher(unknown_threshold=-1.0, top_k=3).match(stored, g)
    assert len(r) == 7 and all(len(x.ranked) == 3 for x in r)
    sims = (stored / np.linalg.norm(stored, axis=1, keepdims=True)) @ g.embeddings.T
    assert np.isclose(r[0].score, sims[0].max(), atol=1e-5)


def test_empty_inputs():
    g = Gallery(np.zeros((0, 4)), [], [])
    assert Matcher().match(np.zeros((2, 4), np.float32), g)[0].label == UNKNOWN
    g2 = Gallery(np.eye(2), ["a", "b"], [0, 1])
    assert Matcher().match(np.zeros((0, 2), np.float32), g2) == []
