"""Round 4 exchange fixes: stem clashes in label-per-image formats, generated `_<id>` names that a
real name mimics, escaped lone surrogates in COCO (ijson's C backend), duplicate annotation ids."""
from __future__ import annotations

import io
import json
import posixpath

import pytest

from backend.annotations.models import Annotation
from backend.exchange.formats import jsonstream
from backend.exchange.formats.base import SourceFile
from backend.images.models import Image
from backend.projects.models import LabelClass

from ..factories import make_image
from .helpers import H, W, annotate, export, json_upload, rect, run_import, zip_upload

ALL_FORMATS = ["coco", "labelme", "yolo", "native", "labelstudio"]


def _named(project, cls, names: list[str], *, seed: int = 40) -> list[Image]:
    """One image per name (ids in this order), stored under it as it is, each with one object of
    its own size."""
    images = []
    for k, name in enumerate(names):
        image = make_image(project, width=W, height=H, seed=seed + k)
        Image.objects.filter(pk=image.pk).update(original_name=name)
        annotate(image, cls, rect(2, 6 + 3 * k, 3, 8 + 3 * k))
        images.append(image)
    return images


def _stem(name: str) -> str:
    return name.rpartition(".")[0]


def _assert_unique_entries(zf) -> None:
    names = zf.namelist()
    assert len({n.lower() for n in names}) == len(names), names


def _round_trip(project, user, zf, fmt) -> None:
    """Delete the objects, import the export back: each comes back on its own image."""
    before = sorted((a.image_id, a.area) for a in Annotation.objects.filter(project=project))
    Annotation.objects.filter(project=project).delete()
    job = run_import(project, user, fmt, zip_upload(zf), as_accepted=True)
    assert job.status == "done", job.errors
    assert sorted((a.image_id, a.area) for a in Annotation.objects.filter(project=project)) == before


# --------------------------------------------------------------------------- 2: stem clashes


STEM_CLASH = ["a.png", "a.jpg", "A.png", "a.jpg.png"]
STEM_SETS = [["a.png", "a.jpg", "a.jpg.png"], STEM_CLASH]  # the report's set; with a case clash too


def _expected_names(images, names) -> dict[int, str]:
    """What a stem-named format calls each image: '<stem>_<id>.<ext>' when the stem is shared."""
    stems = [_stem(n).lower() for n in names]
    return {image.pk: (f"{_stem(name)}_{image.pk}.{name.rpartition('.')[2]}" if stems.count(_stem(name).lower()) > 1
                       else name) for image, name in zip(images, names)}


@pytest.mark.django_db
@pytest.mark.parametrize("names", STEM_SETS, ids=["report", "with-case"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_images_sharing_a_stem_never_give_two_entries_of_one_name(target, admin_user, fmt, names):
    project, classes, _ = target
    images = _named(project, classes[0], names)
    _, zf = export(project, admin_user, fmt, include_images=True)
    _assert_unique_entries(zf)
    entries = zf.namelist()
    expected = _expected_names(images, names)
    if fmt == "labelme":
        labels = [n for n in entries if n.endswith(".json")]
        assert len(labels) == len(images)
        for label in labels:  # each label file sits next to its image, same stem, imagePath right
            doc = json.loads(zf.read(label))
            assert doc["imagePath"] in entries and _stem(doc["imagePath"]) == _stem(label)
        assert sorted(json.loads(zf.read(n))["imagePath"] for n in labels) == sorted(expected.values())
    if fmt == "yolo":
        pictures = sorted(posixpath.basename(n) for n in entries if n.startswith("images/"))
        labels = sorted(posixpath.basename(n) for n in entries if n.startswith("labels/"))
        assert pictures == sorted(expected.values())
        assert sorted(_stem(n) for n in pictures) == sorted(_stem(n) for n in labels)


@pytest.mark.django_db
@pytest.mark.parametrize("names", STEM_SETS, ids=["report", "with-case"])
@pytest.mark.parametrize("fmt", ["labelme", "yolo"])
def test_a_stem_clash_export_imports_back_onto_each_image(target, admin_user, fmt, names):
    project, classes, _ = target
    _named(project, classes[0], names)
    _, zf = export(project, admin_user, fmt, include_images=True)
    _round_trip(project, admin_user, zf, fmt)


@pytest.mark.django_db
def test_an_image_named_like_its_own_label_file_is_exported_with_its_format_extension(target, admin_user):
    """An image named 'x.json' (stored before uploads gave every name its format's extension)
    would be its own LabelMe label file: the export failed naming it. Round 5: it is exported as
    'x.json.png' (its stored format), next to 'x.json.json' (tests/backend/exchange/test_round5_names.py)."""
    project, classes, _ = target
    _named(project, classes[0], ["x.json"])
    _, zf = export(project, admin_user, "labelme", include_images=True)
    assert sorted(zf.namelist()) == ["x.json.json", "x.json.png"]
    _, zf = export(project, admin_user, "labelme")  # without the images there is one file
    assert zf.namelist() == ["x.json.json"]


# --------------------------------------------------------------------------- 4: names that look generated


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_real_name_equal_to_a_generated_one_round_trips(target, admin_user, fmt):
    """x.png (A), X.png (B) and a real 'x_<A>.png' (C): the export writes A as 'x_<A>.png', so C's
    name is generated too; the import sends each object back to its own image."""
    project, classes, _ = target
    first, second, third = _named(project, classes[0], ["x.png", "X.png", "placeholder.png"])
    Image.objects.filter(pk=third.pk).update(original_name=f"sub/x_{first.pk}.png")
    _, zf = export(project, admin_user, fmt, include_images=True)
    _assert_unique_entries(zf)
    if fmt == "coco":
        doc = json.loads(zf.read("annotations/instances.json"))
        assert {i["id"]: i["file_name"] for i in doc["images"]} == {
            first.pk: f"x_{first.pk}.png", second.pk: f"X_{second.pk}.png", third.pk: f"x_{first.pk}_{third.pk}.png"}
    _round_trip(project, admin_user, zf, fmt)


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_lookalike_name_is_renamed_whatever_the_export_holds(target, admin_user, fmt):
    """The real 'x_<A>.png' has the lower id (it comes first) and is exported alone or with A:
    its name is never written as it is, as that name means image A to an import."""
    project, classes, _ = target
    lookalike, first, second = _named(project, classes[0], ["placeholder.png", "x.png", "X.png"])
    Image.objects.filter(pk=lookalike.pk).update(original_name=f"x_{first.pk}.png")
    _, zf = export(project, admin_user, fmt, include_images=True)
    _assert_unique_entries(zf)
    _round_trip(project, admin_user, zf, fmt)
    # Exported alone, it still gets a name of its own, which an import resolves to it.
    _, zf = export(project, admin_user, fmt, image_ids=[lookalike.pk])
    text = " ".join(zf.namelist()) + " ".join(zf.read(n).decode() for n in zf.namelist() if not n.startswith("images/"))
    assert f"x_{first.pk}_{lookalike.pk}" in text
    Annotation.objects.filter(project=project).delete()
    job = run_import(project, admin_user, fmt, zip_upload(zf))
    assert job.status == "done", job.errors
    assert list(Annotation.objects.filter(project=project).values_list("image_id", flat=True)) == [lookalike.pk]


# --------------------------------------------------------------------------- 8: lone surrogates


def _coco(category: str, file_name: str = "img1.png", ann_ids=(1,)) -> dict:
    return {
        "images": [{"id": 1, "file_name": file_name, "width": W, "height": H}],
        "categories": [{"id": 1, "name": category}],
        "annotations": [{"id": ann_id, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 20, 1, 20, 20]],
                         "area": 1, "bbox": [1, 1, 19, 19], "iscrowd": 0} for ann_id in ann_ids],
    }


@pytest.mark.django_db
def test_a_lone_surrogate_in_a_coco_category_is_refused_not_replaced(target, admin_user):
    project, *_ = target
    data = json.dumps(_coco("sur\ud800cls")).encode()  # ensure_ascii: written as the escape \ud800
    assert b"\\ud800" in data
    job = run_import(project, admin_user, "coco", json_upload(data, "x.json"), create_missing_classes=True)
    assert job.status == "failed"
    assert job.errors == [{"item": "x.json: annotation 1",
                           "error": "class name 'sur\\ud800cls' contains an unpaired surrogate (\\ud800-\\udfff)"}]
    assert not LabelClass.objects.filter(project=project, name__startswith="sur").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("escape", ["\udc00", "\ud800"])
def test_a_lone_surrogate_in_a_coco_file_name_is_a_per_item_error(target, admin_user, escape):
    project, *_ = target
    job = run_import(project, admin_user, "coco", json_upload(json.dumps(_coco("hammer", f"b{escape}.png")).encode(), "x.json"))
    assert job.status == "failed"
    assert job.errors[0]["item"] == "x.json: image 1"
    assert "unpaired surrogate" in job.errors[0]["error"] and "internal error" not in job.errors[0]["error"]
    assert job.result["error_count"] >= 1


@pytest.mark.django_db
def test_escaped_surrogate_pairs_and_escaped_backslashes_still_import(target, admin_user):
    project, *_ = target
    doc = _coco("ok\U0001f600")  # ensure_ascii writes the pair \ud83d\ude00
    raw = json.dumps(doc).replace('"ok', '"\\\\ud800ok')  # a literal backslash then 'ud800': text, not an escape
    job = run_import(project, admin_user, "coco", json_upload(raw.encode(), "x.json"), create_missing_classes=True)
    assert job.status == "done", job.errors
    assert job.result["classes_created"] == ["\\ud800ok\U0001f600"]


@pytest.mark.parametrize(("text", "lone"), [
    (b'"\\ud800"', True), (b'"\\udc00"', True), (b'"\\ud800\\u0041"', True), (b'"\\\\\\ud800"', True),
    (b'"\\ud83d\\ude00"', False), (b'"\\\\ud800"', False), (b'"\\u00e9\\uD83D\\uDE00"', False), (b'"plain"', False),
])
@pytest.mark.parametrize("pad", range(0, 24))
def test_the_lone_surrogate_scan_across_chunk_boundaries(monkeypatch, text, lone, pad):
    monkeypatch.setattr(jsonstream, "SCAN_CHUNK", 16)
    data = b"[" + b" " * pad + text + b" " * 3 + b"]"
    assert jsonstream.has_lone_surrogate(SourceFile("x.json", data)) is lone
    long_run = b'["' + b"\\\\" * 40 + b'\\ud800"]'  # an escaped backslash run longer than a chunk
    assert jsonstream.has_lone_surrogate(SourceFile("y.json", long_run)) is True


def test_bytes_that_are_not_utf8_are_malformed_json_not_an_internal_error():
    from backend.exchange.formats.coco import CocoParser

    data = json.dumps(_coco("hammer")).encode().replace(b"img1", b"img\xed\xa0\x80")
    errors = list(CocoParser().parse([SourceFile("x.json", data)]))
    assert len(errors) == 1 and errors[0].item == "x.json" and errors[0].error.startswith("malformed JSON")


# --------------------------------------------------------------------------- 15: duplicate annotation ids


@pytest.mark.django_db
def test_duplicate_coco_annotation_ids_are_refused(target, admin_user):
    project, *_ = target
    job = run_import(project, admin_user, "coco", json_upload(_coco("hammer", ann_ids=(1, 2, 1, 7, 1, 2)), "x.json"))
    assert job.status == "failed"
    assert job.errors == [
        {"item": "x.json: annotation 1", "error": "3 annotations have id 1"},
        {"item": "x.json: annotation 2", "error": "a second annotation with id 2"},
    ]
    assert not Annotation.objects.filter(project=project).exists()
    job = run_import(project, admin_user, "coco", json_upload(_coco("hammer", ann_ids=(1, 2, 3)), "x.json"))
    assert job.status == "done", job.errors
