"""Instances under a type (seed 001: "screwdriver-1234"): the type is decided by all its exemplars,
then its instances are ranked among themselves."""
import numpy as np

from ml.gallery import Gallery
from ml.matcher import UNKNOWN, HierarchicalMatch, Matcher


def unit(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


# Two screwdrivers (instances s1234, s2345 of type "screwdriver", which has no exemplar of its own)
# that look alike, and pliers far away.
S1234, S2345, PLIERS = unit(1, 0.25, 0), unit(1, -0.25, 0), unit(0, 0, 1)
PARENTS = {"s1234": "screwdriver", "s2345": "screwdriver"}


def gallery(parents=PARENTS):
    g = Gallery(np.stack([S1234, S2345, PLIERS]), ["s1234", "s2345", "pliers"], ["e1", "e2", "e3"])
    g.parents = parents
    return g


def test_type_decided_by_all_its_exemplars_where_flat_classes_are_ambiguous():
    between = unit(1, 0, 0.05)  # a screwdriver, equally like both instances
    flat = Matcher(unknown_threshold=0.5, margin=0.1).match(np.stack([between]), gallery(parents={}))[0]
    assert flat.label == UNKNOWN  # flat classes: the two screwdrivers split the vote

    r = Matcher(unknown_threshold=0.5, margin=0.1).match(np.stack([between]), gallery())[0]
    assert isinstance(r, HierarchicalMatch)
    assert r.type_label == "screwdriver" and r.instance_label is None and r.label == "screwdriver"
    assert r.margin > 0.5  # against pliers, not against the sibling instance


def test_instance_ranked_within_the_winning_type():
    q = unit(1, 0.2, 0)
    r = Matcher(unknown_threshold=0.5, margin=0.05).match(np.stack([q]), gallery())[0]
    assert (r.label, r.type_label, r.instance_label) == ("s1234", "screwdriver", "s1234")
    assert r.score > 0.99 and r.margin > 0.05  # margin over the other instance
    # Types best first, the winning type followed by its instances.
    assert [x[0] for x in r.ranked] == ["screwdriver", "s1234", "s2345", "pliers"]
    assert r.ranked[0][2] == "e1"  # the type's best exemplar is its instance's


def test_other_type_and_unknown_unchanged():
    q = np.stack([unit(0.05, 0, 1), unit(0, 1, 0)])
    r = Matcher(unknown_threshold=0.5).match(q, gallery())
    assert (r[0].label, r[0].type_label, r[0].instance_label) == ("pliers", "pliers", None)
    assert r[1].label == UNKNOWN and r[1].type_label == UNKNOWN


def test_unique_per_image_applies_to_instances_not_types():
    # Two screwdrivers, both closest to s1234; and two pliers-like objects.
    q = np.stack([unit(1, 0.2, 0), unit(1, 0.1, 0), unit(0, 0.01, 1), unit(0, -0.01, 1)])
    r = Matcher(unknown_threshold=0.5, unique_per_image=True, min_assign_score=0.5).match(q, gallery())
    assert [x.type_label for x in r[:2]] == ["screwdriver", "screwdriver"]  # a type may repeat
    assert [x.instance_label for x in r[:2]] == ["s1234", "s2345"]  # one physical screwdriver each
    assert sorted(x.label for x in r[2:]) == ["pliers", UNKNOWN]  # a type without instances stays unique


def test_instance_needs_the_threshold():
    g = gallery()
    q = np.stack([unit(1, 0.25, 0)])
    r = Matcher(unknown_threshold=0.999, margin=0.0).match(q, g, parents={"s1234": "screwdriver", "s2345": "screwdriver"})[0]
    assert r.instance_label == "s1234"
    r = Matcher(unknown_threshold=0.5, margin=0.9).match(q, g)[0]
    assert r.type_label == "screwdriver" and r.instance_label is None  # too close to s2345 to name it
