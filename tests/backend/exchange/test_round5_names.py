"""Round 5 (black-box report api5) exchange fixes: names that extractors merge (NFC/NFD, trailing
dots and spaces) are renamed in exports (F-B); images uploaded under a foreign extension ('a.json')
export and import back (F-A); COCO ids are JSON integers, and two image entries of one file that
land on one image are refused (F-H)."""
from __future__ import annotations

import json
import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation
from backend.images.models import Image
from backend.images.services import upload_images

from ..factories import image_bytes
from .helpers import H, W, annotate, export, json_upload, rect, run_import, zip_upload
from .test_round4_exchange import _named as named, _round_trip

ALL_FORMATS = ["coco", "labelme", "yolo", "native", "labelstudio"]
NFC, NFD = unicodedata.normalize("NFC", "Café.png"), unicodedata.normalize("NFD", "Café.png")
MERGED = [NFC, NFD, "b.png", "b.png ", "b.png."]  # names one extractor or another merges


def _named(project, cls, names: list[str]) -> list[Image]:
    """Images stored under these names as they are (as before round 5), one object each."""
    return named(project, cls, names, seed=60)


def _uploaded(project, cls, names: list[str]) -> list[Image]:
    """Images uploaded under these names (PNG bytes), one object each."""
    images = []
    for k, name in enumerate(names):
        data = image_bytes(W, H, (k * 50 % 256, 90, 200))
        report = upload_images(project=project, user=None, files=[SimpleUploadedFile(name, data)])
        assert report.created, report.errors or report.duplicates
        annotate(report.created[0], cls, rect(2, 6 + 3 * k, 3, 8 + 3 * k))
        images.append(report.created[0])
    return images


def fold_name(name: str) -> str:
    """As macOS and Windows compare names: NFC, case folded, trailing dots and spaces dropped."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold()).rstrip(" .")


def _assert_no_merged_entries(zf) -> None:
    names = zf.namelist()
    assert len({fold_name(n) for n in names}) == len(names), names


# --------------------------------------------------------------------------- F-B


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_names_extractors_merge_are_renamed_and_import_back(target, admin_user, fmt):
    """Every format wrote 'images/Café.png' twice (composed and decomposed: macOS keeps one), and
    'b.png', 'b.png ' and 'b.png.' (Windows makes them one file)."""
    project, classes, _ = target
    images = _named(project, classes[0], MERGED)
    _, zf = export(project, admin_user, fmt, include_images=True)
    _assert_no_merged_entries(zf)
    if fmt in ("coco", "labelme", "yolo", "labelstudio"):
        pictures = [n for n in zf.namelist() if n.rpartition("/")[2].rpartition(".")[2] == "png"]
        assert len(pictures) == len(images)
        for image in images:  # every one of them renamed '<stem>_<id>.png'
            assert any(f"_{image.pk}.png" in n for n in pictures), (image.pk, pictures)
    if fmt in ("coco", "labelme", "yolo", "labelstudio"):
        _round_trip(project, admin_user, zf, fmt)


@pytest.mark.django_db
def test_a_stem_clash_by_normalization_is_renamed_for_label_files(target, admin_user):
    """LabelMe's label file is '<stem>.json': 'Café.png' and 'CAFÉ.jpg' (one composed, one not) clash there."""
    project, classes, _ = target
    images = _named(project, classes[0], [NFC, unicodedata.normalize("NFD", "CAFÉ.jpg")])
    _, zf = export(project, admin_user, "labelme", include_images=True)
    _assert_no_merged_entries(zf)
    assert len([n for n in zf.namelist() if n.endswith(".json")]) == 2
    _round_trip(project, admin_user, zf, "labelme")
    assert {a.image_id for a in Annotation.objects.filter(project=project)} == {i.pk for i in images}


def test_fold_name():
    from backend.core.zips import fold_name

    assert fold_name(NFD) == fold_name(NFC) == fold_name("CAFÉ.PNG")
    assert fold_name("b.png ") == fold_name("b.png.") == fold_name("B.PNG. .") == "b.png"
    assert fold_name("Straße.png") == fold_name("STRASSE.png")


# --------------------------------------------------------------------------- F-A


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_images_uploaded_under_foreign_extensions_export_and_import_back(target, admin_user, fmt):
    """'a.json' next to 'a.png' failed every LabelMe export with images; COCO/Label Studio exports
    holding 'a.json' / 'tasks.json' and YOLO's holding 'data.yaml' were refused on import."""
    project, classes, _ = target
    images = _uploaded(project, classes[0], ["a.json", "a.png", "tasks.json", "data.yaml", "b.txt"])
    assert [i.original_name for i in images] == ["a.json.png", "a.png", "tasks.json.png", "data.yaml.png", "b.txt.png"]
    _, zf = export(project, admin_user, fmt, include_images=True)
    _assert_no_merged_entries(zf)
    if fmt != "native":
        _round_trip(project, admin_user, zf, fmt)


@pytest.mark.django_db
def test_images_stored_under_foreign_extensions_before_round5_export_with_their_format_extension(target, admin_user):
    project, classes, _ = target
    _named(project, classes[0], ["a.json", "a.png", "data.yaml"])
    for fmt in ("labelme", "yolo", "coco"):
        _, zf = export(project, admin_user, fmt, include_images=True)
        _assert_no_merged_entries(zf)
        assert any(n.endswith("a.json.png") for n in zf.namelist()) and any(n.endswith("data.yaml.png") for n in zf.namelist())
        _round_trip(project, admin_user, zf, fmt)


def _coco(names: list[str], *, ann_ids=None, image_ids=None) -> dict:
    image_ids = image_ids or list(range(1, len(names) + 1))
    return {
        "images": [{"id": i, "file_name": n, "width": W, "height": H} for i, n in zip(image_ids, names)],
        "categories": [{"id": 1, "name": "hammer"}],
        "annotations": [{"id": a, "image_id": image_ids[k % len(image_ids)], "category_id": 1, "bbox": [1, 1, 5, 5 + k]}
                        for k, a in enumerate(ann_ids or range(1, len(names) + 1))],
    }


@pytest.mark.django_db
def test_a_foreign_file_naming_an_image_as_sent_finds_it_when_unambiguous(target, admin_user):
    project, classes, _ = target
    [image] = _uploaded(project, classes[0], ["shot.json"])
    assert image.original_name == "shot.json.png"
    job = run_import(project, admin_user, "coco", json_upload(_coco(["shot.json"])))
    assert job.status == "done", job.errors
    assert Annotation.objects.filter(image=image).count() == 2  # its own object and the imported one


@pytest.mark.django_db
def test_a_name_as_sent_that_two_images_answer_to_is_ambiguous(target, admin_user):
    project, classes, _ = target
    first, second = _uploaded(project, classes[0], ["shot.json", "other.png"])
    Image.objects.filter(pk=second.pk).update(original_name="shot.json.png")  # the same name twice
    job = run_import(project, admin_user, "coco", json_upload(_coco(["shot.json"])))
    assert job.status == "failed"
    assert any("ambiguous" in e["error"] for e in job.errors), job.errors


@pytest.mark.django_db
def test_an_image_really_named_so_wins_over_one_that_answers_to_the_name(target, admin_user):
    project, classes, _ = target
    real, appended = _uploaded(project, classes[0], ["x.png", "shot.json"])
    Image.objects.filter(pk=real.pk).update(original_name="shot.json")  # stored before round 5
    job = run_import(project, admin_user, "coco", json_upload(_coco(["shot.json"])), as_accepted=True)
    assert job.status == "done", job.errors
    assert Annotation.objects.filter(image=real).count() == 2 and Annotation.objects.filter(image=appended).count() == 1


# --------------------------------------------------------------------------- F-H


@pytest.mark.django_db
@pytest.mark.parametrize("second", [7.0, "7", None, True, "missing"])
def test_coco_annotation_ids_are_json_integers(target, admin_user, second):
    """Ids 7 and 7.0 were both imported (the repeated-id check compared only integers)."""
    project, _, images = target
    doc = _coco([images[0].original_name], ann_ids=[7, 8])
    if second == "missing":
        del doc["annotations"][1]["id"]
    else:
        doc["annotations"][1]["id"] = second
    job = run_import(project, admin_user, "coco", json_upload(doc))
    assert job.status == "failed"
    assert any("integer 'id'" in e["error"] for e in job.errors), job.errors
    assert not Annotation.objects.filter(project=project).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["category id", "image_id", "category_id"])
def test_coco_image_and_category_references_are_json_integers(target, admin_user, where):
    project, _, images = target
    doc = _coco([images[0].original_name])
    if where == "category id":
        doc["categories"][0]["id"] = 1.0
    elif where == "image_id":
        doc["annotations"][0]["image_id"] = True  # Python takes True for 1
    else:
        doc["annotations"][0]["category_id"] = True
    job = run_import(project, admin_user, "coco", json_upload(doc))
    assert job.status == "failed", job.errors
    assert not Annotation.objects.filter(project=project).exists()


@pytest.mark.django_db
def test_two_coco_image_entries_resolving_to_one_image_are_ambiguous(target, admin_user):
    """'i.png' and 'I.PNG' (ids 1 and 2) both landed on the one project image, without a word."""
    project, classes, _ = target
    [image] = _named(project, classes[0], ["i.png"])
    job = run_import(project, admin_user, "coco", json_upload(_coco(["i.png", "I.PNG"])))
    assert job.status == "failed"
    assert any("ambiguous" in e["error"] and "I.PNG" in e["error"] and f"image {image.pk}" in e["error"]
               for e in job.errors), job.errors
    # One entry per image is fine, however many annotations it has.
    job = run_import(project, admin_user, "coco", json_upload(_coco(["i.png"], ann_ids=[1, 2, 3])))
    assert job.status == "done", job.errors
