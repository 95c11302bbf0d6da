"""Masks are stored in their canonical RLE: zero-length runs padding a valid string (a 1-pixel
mask sent as 5 MB) are re-encoded, so reads and the audit trail carry a few bytes."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from backend.annotations.models import Annotation, AnnotationEvent
from backend.core.masks import canonical_rle, normalize_mask

from .factories import make_class, make_image, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


def one_pixel_rle(height, width):
    mask = np.zeros((height, width), dtype=np.uint8, order="F")
    mask[5, 7] = 1
    return mask_utils.encode(mask)["counts"].decode("ascii")


def padded_rle(height, width, empty_runs):
    """The one-pixel mask as a valid compressed string with `empty_runs` zero-length runs appended."""
    before = 7 * height + 5
    runs = [before, 1, height * width - before - 1] + [0] * empty_runs
    encoded = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return encoded["counts"].decode("ascii")


def test_padded_rle_is_stored_canonically_through_the_api(client_for):
    owner = make_user("masker")
    project = make_project(owner)
    image = make_image(project)  # 64x48
    label_class = make_class(project)
    client = client_for(owner)
    canonical = one_pixel_rle(48, 64)
    padded = padded_rle(48, 64, 1_000_000)  # a million empty runs: still sums to h*w
    assert len(padded) > 1_000_000
    base = f"/api/projects/{project.pk}/annotations/"
    response = client.post(base, {"image": image.pk, "label_class": label_class.pk,
                                  "mask_rle": {"size": [48, 64], "counts": padded}}, format="json")
    assert response.status_code == 201, response.content[:300]
    created = response.json()
    assert created["mask_rle"]["counts"] == canonical and created["area"] == 1
    assert Annotation.objects.get(pk=created["id"]).mask_rle == {"size": [48, 64], "counts": canonical}
    # An edit is re-encoded too, and the audit trail holds the short form.
    edited = client.patch(f"{base}{created['id']}/", {"version": 1, "mask_rle": {"size": [48, 64], "counts": padded}},
                          format="json")
    assert edited.status_code == 200 and edited.json()["mask_rle"]["counts"] == canonical
    for event in AnnotationEvent.objects.filter(annotation_id=created["id"]):
        for state in (event.before, event.after):
            assert len(str(state)) < 2000
    # A malformed string is still a 400 naming the field.
    bad = client.post(base, {"image": image.pk, "label_class": label_class.pk,
                             "mask_rle": {"size": [48, 64], "counts": canonical + "0" * 5 + "1"}}, format="json")
    assert bad.status_code == 400 and "mask_rle" in bad.content.decode()


def test_canonical_rle_keeps_every_mask_and_leaves_canonical_strings_alone():
    rng = np.random.default_rng(7)
    height, width = 23, 31
    for _ in range(50):
        mask = np.asfortranarray((rng.random((height, width)) < rng.random()).astype(np.uint8))
        if not mask.any():
            continue
        rle = mask_utils.encode(mask)
        counts = rle["counts"].decode("ascii")
        assert normalize_mask(height=height, width=width, rle={"size": [height, width], "counts": counts})["counts"] == counts
        # The same mask as uncompressed runs with empty runs spliced in anywhere.
        flat = mask.ravel(order="F")
        changes = np.flatnonzero(np.diff(flat)) + 1
        bounds = np.concatenate(([0], changes, [flat.size]))
        runs = list(np.diff(bounds))
        if flat[0] == 1:
            runs = [0] + runs
        padded = []
        for run in runs:
            padded += [int(run)] + ([0, 0] if rng.random() < 0.5 else [])
        padded += [0, 0, 0] if len(padded) % 2 else [0, 0]
        result = normalize_mask(height=height, width=width, rle={"size": [height, width], "counts": padded})
        assert result["counts"] == counts
        assert (mask_utils.decode({"size": [height, width], "counts": result["counts"].encode()}) == mask).all()


def test_polygons_and_plain_rles_are_unchanged():
    rle = rect_rle(48, 64, 2, 3, 12, 9)
    assert canonical_rle(rle) is rle
    assert normalize_mask(height=48, width=64, rle=rle) == rle
