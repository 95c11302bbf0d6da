"""Hostile or odd import files found by a black-box tester: each must end the job "failed" with
a clear per-item error in bounded memory (or, for duplicate names, round-trip), never leave
it "running" or take the worker down."""
import base64
import io
import json
import tracemalloc
import zipfile

import pytest
import yaml
from PIL import Image as PILImage

from backend.annotations.models import Annotation
from backend.core import json_limits
from backend.exchange import image_names, importing, services
from backend.exchange.formats import jsonstream
from backend.images.models import Image

from ..factories import make_image, zip_bytes
from .helpers import H, W, annotate, export, json_upload, rect, run_import, zip_upload


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --------------------------------------------------------------------------- 1: nesting depth

DEEP = 5_000  # far past the limit (64), small enough that the unfixed parsers survive it


def _deep_docs(depth):
    nest = deep(depth).decode()
    return {
        "coco": '{"images":' + nest + ',"annotations":[]}',
        "labelme": '{"shapes":' + nest + ',"imagePath":"img1.png"}',
        "native": '[{"image":"img1.png","detections":' + nest + "}]",
        "labelstudio": '[{"data":{"image":"img1.png"},"annotations":' + nest + "}]",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["coco", "labelme", "native", "labelstudio"])
def test_json_nested_too_deep_is_refused_before_parsing(target, admin_user, fmt):
    project, _, _ = target
    doc = _deep_docs(DEEP)[fmt].encode()
    tracemalloc.start()
    try:
        job = run_import(project, admin_user, fmt, json_upload(doc, name="deep.json"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.status == "failed"
    assert job.errors == [{"item": "deep.json", "error": "JSON nested too deep: more than 64 levels (at most 64 are accepted)"}]
    assert peak < 32 * 2**20, peak  # the scan reads chunks; no Python object per level


@pytest.mark.django_db
def test_deep_json_in_a_zip_is_refused_and_the_other_files_still_checked(target, admin_user):
    project, _, _ = target
    ok = {"shapes": [{"label": "hammer", "points": [[1, 1], [9, 1], [9, 9]], "shape_type": "polygon"}],
          "imagePath": "nope.png"}
    upload = zip_bytes({"a.json": _deep_docs(200)["labelme"].encode(), "b.json": json.dumps(ok).encode()})
    job = run_import(project, admin_user, "labelme", json_upload(upload, name="x.zip"))
    assert job.status == "failed"
    assert {e["item"] for e in job.errors} == {"hint", "a.json", "b.json: shape 0"}, job.errors
    assert any("nested too deep" in e["error"] for e in job.errors)


@pytest.mark.django_db
def test_yolo_data_yaml_nested_too_deep_is_an_error_not_a_crash(target, admin_user):
    project, _, _ = target
    upload = zip_bytes({"data.yaml": b"names: " + deep(5000), "labels/img1.txt": b"0 0.5 0.5 0.2 0.2\n"},
                       compression=zipfile.ZIP_STORED)
    job = run_import(project, admin_user, "yolo", json_upload(upload, name="y.zip"))
    assert job.status == "failed"
    assert job.errors == [{"item": "data.yaml", "error": "malformed YAML: nested too deep"}], job.errors


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 18])
def test_nesting_scan_ignores_brackets_in_strings_across_chunks(chunk, monkeypatch):
    monkeypatch.setattr(jsonstream, "SCAN_CHUNK", chunk)
    text = json.dumps({"a": ["[[[", {"b": "\\\"{{", "c": [[["]]]\\"]]]}], "d": "\\\\"}).encode()
    assert jsonstream.nesting_depth(io.BytesIO(text)) == 6 == json_limits.nesting_depth(text)
    assert jsonstream.nesting_depth(io.BytesIO(b'"[[[[\\"[[["' + deep(3))) == 3


# --------------------------------------------------------------------------- 2: NUL characters


def _coco_nul(name="img1.png", category="x\u0000y"):
    return {"images": [{"id": 1, "file_name": name, "width": W, "height": H}],
            "categories": [{"id": 1, "name": category}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}


NUL_CASES = {
    "coco category": ("coco", _coco_nul(), {}, "class name 'x\\u0000y' contains a NUL character"),
    "coco category, create classes": ("coco", _coco_nul(), {"create_missing_classes": True},
                                      "class name 'x\\u0000y' contains a NUL character"),
    "coco file_name": ("coco", _coco_nul(name="a\u0000.png", category="hammer"), {},
                       "image 'a\\u0000.png' is not in this project"),
    "labelme label": ("labelme", {"shapes": [{"label": "x\u0000", "points": [[1, 1], [20, 1], [20, 20]],
                                              "shape_type": "polygon"}],
                                  "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}, {},
                      "class name 'x\\u0000' contains a NUL character"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(NUL_CASES))
def test_nul_in_a_name_fails_the_job_with_the_nul_escaped(target, admin_user, case):
    project, _, _ = target
    fmt, doc, options, message = NUL_CASES[case]
    job = run_import(project, admin_user, fmt, json_upload(doc), **options)
    assert job.status == "failed"
    assert any(message in e["error"] for e in job.errors), job.errors
    assert Annotation.objects.filter(project=project).count() == 0


def _labelme(label="hammer", path="img1.png"):
    return {"shapes": [{"label": label, "points": [[1, 1], [20, 1], [20, 20]], "shape_type": "polygon"}],
            "imagePath": path, "imageHeight": H, "imageWidth": W}


SURROGATE_CASES = {  # LabelMe's reader keeps a lone "\ud800"; the job then failed recording its errors
    "label": (_labelme(label="x\ud800y"), {}, "class name 'x\\ud800y' contains an unpaired surrogate"),
    "label, create classes": (_labelme(label="x\ud800y"), {"create_missing_classes": True},
                              "class name 'x\\ud800y' contains an unpaired surrogate"),
    "imagePath": (_labelme(path="x\udc00.png"), {},
                  "file name 'x\\udc00.png' contains an unpaired surrogate (\\ud800-\\udfff)"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(SURROGATE_CASES))
def test_a_lone_surrogate_in_a_labelme_file_fails_its_item_with_the_surrogate_escaped(target, admin_user, case):
    project, _, _ = target
    doc, options, message = SURROGATE_CASES[case]
    job = run_import(project, admin_user, "labelme", json_upload(doc), **options)
    assert job.status == "failed"
    assert any(message in e["error"] for e in job.errors), job.errors
    assert not any("internal error" in e["error"] for e in job.errors), job.errors
    assert Annotation.objects.filter(project=project).count() == 0
    assert not project.classes.filter(name__startswith="x").exists()


@pytest.mark.django_db
def test_nul_in_stored_free_text_is_dropped(target, admin_user):
    project, _, _ = target
    doc = [{"image": "img1.png", "detections": [{
        "bbox_xyxy": [1, 1, 9, 9], "class": "hammer", "vlm_class": "ham\u0000mer", "score_vlm": 0.5,
        "ranked": [{"name": "ham\u0000mer", "score": "0.\u00009"}],
    }]}]
    job = run_import(project, admin_user, "native", json_upload(doc, name="predictions.json"))
    assert job.status == "done", job.errors
    ann = Annotation.objects.get(project=project)
    assert ann.det_phrase == "hammer"
    assert [(c["name"], c["score"]) for c in ann.candidates] == [("hammer", None)]


@pytest.mark.django_db
def test_an_unexpected_failure_while_recording_errors_still_fails_the_job(target, admin_user, monkeypatch):
    project, _, _ = target
    monkeypatch.setattr(importing.Errors, "as_list", lambda self: [{"item": "x", "error": object()}])
    job = run_import(project, admin_user, "coco", json_upload(b"{"))
    assert job.status == "failed"
    assert job.finished_at is not None
    assert job.errors[0]["error"].startswith("internal error:"), job.errors


@pytest.mark.django_db
def test_an_unexpected_failure_at_the_end_of_an_export_fails_the_job(source, admin_user, monkeypatch):
    from .helpers import run_here

    project, _, _, _ = source
    monkeypatch.setattr(services, "write_export", lambda **kwargs: {"images": object()})
    with run_here():
        job = services.start_export(project=project, user=admin_user, format="coco")
    job = services.run_export(job_id=job.pk)
    assert job.status == "failed"
    assert job.error.startswith("internal error:"), job.error


# --------------------------------------------------------------------------- 8: memory amplifiers


def _png(width, height, mode="1") -> str:
    out = io.BytesIO()
    PILImage.new(mode, (width, height), 1).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.django_db
def test_labelme_mask_larger_than_the_image_is_refused_before_it_is_decoded(target, admin_user):
    project, _, _ = target
    doc = {"shapes": [{"label": "hammer", "points": [[1, 1], [8000, 8000]], "shape_type": "mask",
                       "mask": _png(8000, 8000)}],
           "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}
    tracemalloc.start()
    try:
        job = run_import(project, admin_user, "labelme", json_upload(doc))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.status == "failed"
    assert any("the mask (8000x8000 at 1,1) reaches outside the image (64x48)" in e["error"] for e in job.errors), job.errors
    assert peak < 16 * 2**20, peak  # decoded, the mask alone is 64 MB


@pytest.mark.django_db
def test_labelme_mask_that_fits_still_imports(target, admin_user):
    project, _, _ = target
    doc = {"shapes": [{"label": "hammer", "points": [[2, 3], [11, 7]], "shape_type": "mask", "mask": _png(10, 5, "L")}],
           "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}
    job = run_import(project, admin_user, "labelme", json_upload(doc))
    assert job.status == "done", job.errors
    assert Annotation.objects.get(project=project).bbox == [2, 3, 10, 5]


@pytest.mark.django_db
@pytest.mark.parametrize("points, png, message", [
    ([[1, 1], [10, 10]], (30, 30), "the mask PNG is 30x30 but its shape's box (1,1)-(10,10) is 10x10 pixels"),
    ([[1, 1], [10, 10]], (5, 5), "the mask PNG is 5x5 but its shape's box (1,1)-(10,10) is 10x10 pixels"),
])
def test_labelme_mask_of_another_size_than_its_box_is_refused(target, admin_user, points, png, message):
    """A 30x30 PNG in a 10x10 box was placed at 30x30, past the box (LabelMe refuses it)."""
    project, _, _ = target
    doc = {"shapes": [{"label": "hammer", "points": points, "shape_type": "mask", "mask": _png(*png, "L")}],
           "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}
    job = run_import(project, admin_user, "labelme", json_upload(doc))
    assert job.status == "failed"
    assert [e["error"] for e in job.errors] == [message], job.errors


def _triangle_points(n):
    """n points (n % 3 == 0) going round one triangle, as fractions."""
    return [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5)] * (n // 3)


@pytest.mark.django_db
def test_polygons_over_the_vertex_cap_are_refused_in_every_format(target, admin_user):
    project, _, _ = target
    n = 100_002
    pts = _triangle_points(n)
    line = "0 " + " ".join(f"{x} {y}" for x, y in pts)
    yolo = zip_bytes({"data.yaml": yaml.safe_dump({"names": ["hammer"]}).encode(), "labels/img1.txt": line.encode()},
                     compression=zipfile.ZIP_STORED)
    job = run_import(project, admin_user, "yolo", json_upload(yolo, name="y.zip"))
    assert job.status == "failed"
    assert job.errors == [{"item": "labels/img1.txt: line 1", "error": "has more than 100000 vertices"}], job.errors

    labelme = {"shapes": [{"label": "hammer", "points": [[x * W, y * H] for x, y in pts], "shape_type": "polygon"}],
               "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}
    job = run_import(project, admin_user, "labelme", json_upload(labelme))
    assert job.status == "failed"
    assert any("has more than 100000 vertices" in e["error"] for e in job.errors), job.errors

    # Two LabelMe shapes of one object: the cap is over all its parts.
    half = [[x * W, y * H] for x, y in _triangle_points(60_000)]
    labelme["shapes"] = [{"label": "hammer", "points": half, "shape_type": "polygon", "group_id": 1}] * 2
    job = run_import(project, admin_user, "labelme", json_upload(labelme))
    assert job.status == "failed"
    assert any("has more than 100000 vertices" in e["error"] for e in job.errors), job.errors

    studio = [{"data": {"image": "img1.png"}, "annotations": [{"result": [{
        "type": "polygonlabels", "original_width": W, "original_height": H,
        "value": {"points": [[x * 100, y * 100] for x, y in pts], "polygonlabels": ["hammer"]},
    }]}]}]
    job = run_import(project, admin_user, "labelstudio", json_upload(studio))
    assert job.status == "failed"
    assert any("more than 100000 vertices" in e["error"] for e in job.errors), job.errors
    assert Annotation.objects.filter(project=project).count() == 0


# --------------------------------------------------------------------------- 14: duplicate names

FORMATS = ["coco", "labelme", "yolo", "native", "labelstudio"]


@pytest.fixture
def duplicates(target):
    """img1/img2 both named 'x.png', img3 'X.PNG' (only the case differs), each with one object."""
    project, classes, images = target
    for image, name in zip(images, ["d/x.png", "e/x.png", "X.PNG"]):
        Image.objects.filter(pk=image.pk).update(original_name=name)
    for k, image in enumerate(images):
        annotate(image, classes[0], rect(2, 10 + k * 5, 3, 12 + k * 5))
    return project, images


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_names_round_trip_into_the_same_project(duplicates, admin_user, fmt):
    project, images = duplicates
    _, zf = export(project, admin_user, fmt)
    names = " ".join(zf.namelist()) + " ".join(zf.read(n).decode() for n in zf.namelist() if n.endswith(".json"))
    for image in images:  # every image that shares its name has its id in it, the first too
        assert f"_{image.pk}." in names
    before = {a.pk: (a.image_id, a.mask_rle) for a in Annotation.objects.filter(project=project)}
    Annotation.objects.filter(project=project).delete()
    job = run_import(project, admin_user, fmt, zip_upload(zf), as_accepted=True)
    assert job.status == "done", job.errors
    after = sorted((a.image_id, a.area) for a in Annotation.objects.filter(project=project))
    assert [image_id for image_id, _ in after] == sorted(image_id for image_id, _ in before.values())
    assert len({area for _, area in after}) == 3  # each object came back on its own image


@pytest.mark.django_db
def test_a_suffixed_name_resolves_to_its_image_when_the_plain_name_is_shared(duplicates, admin_user):
    project, images = duplicates
    plan_images = image_names.images_by_name(project)
    assert image_names.match_image("x.png", plan_images)[1].startswith("image 'x.png' is ambiguous")
    for image in images:
        stem = "X" if image == images[2] else "x"
        ext = "PNG" if image == images[2] else "png"
        found, problem = image_names.match_image(f"{stem}_{image.pk}.{ext}", plan_images)
        assert problem is None and found[0] == image.pk
    # An id that is not an image of that name stays unknown, said to be another project's generated name.
    assert image_names.match_image("x_99999999.png", plan_images)[1] == (
        "image 'x_99999999.png' (an export's name for one of several images called 'x.png', by its id in the project "
        "exported) is not in this project")
    # A suffixed name that is itself shared (two images literally called so) still means that image.
    suffixed = f"x_{images[0].pk}.png"
    Image.objects.filter(pk__in=[images[2].pk, make_image(project, seed=4).pk]).update(original_name=suffixed)
    found, problem = image_names.match_image(suffixed, image_names.images_by_name(project))
    assert problem is None and found[0] == images[0].pk


# --------------------------------------------------------------------------- files that are not JSON

JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4


@pytest.mark.django_db
@pytest.mark.parametrize("fmt, name", [("coco", "notjson.json"), ("labelme", "notjson.json"),
                                       ("native", "predictions.json"), ("labelstudio", "tasks.json")])
def test_a_file_that_is_not_json_says_what_it_looks_like(target, admin_user, fmt, name):
    """A JPEG renamed .json failed with "malformed JSON: b'lexical error: invalid char in json
    text.\\n \\xff\\xd8…'", a Python bytes repr."""
    project, _, _ = target
    job = run_import(project, admin_user, fmt, json_upload(JPEG_HEAD, name=name))
    assert job.status == "failed"
    assert [e["error"] for e in job.errors] == ["not JSON: it looks like a JPEG image"], job.errors


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_malformed_json_is_explained_in_plain_text(target, admin_user, fmt):
    project, _, _ = target
    job = run_import(project, admin_user, fmt, json_upload(b'{"images": [1, 2,, 3]}', name="a.json"))
    assert job.status == "failed"
    [error] = [e["error"] for e in job.errors]
    assert error.startswith("malformed JSON: ") and "b'" not in error and "\\n" not in error, error


@pytest.mark.django_db
def test_imported_class_names_are_folded_like_every_other_class_name(target, admin_user):
    """With create_missing_classes an import made 'ｈａｍｍｅｒ' and 'ham\\u200bmer' beside 'hammer'
    (POST /classes/ and gallery folders fold them into one)."""
    from backend.projects.models import LabelClass

    project, _, _ = target
    before = set(LabelClass.objects.filter(project=project).values_list("name", flat=True))
    doc = {"images": [{"id": 1, "file_name": "img1.png", "width": W, "height": H}],
           "categories": [{"id": 1, "name": "ｈａｍｍｅｒ"}, {"id": 2, "name": "ham\u200bmer"}, {"id": 3, "name": "ｓａｗ  blade"}],
           "annotations": [{"id": k, "image_id": 1, "category_id": k, "bbox": [1, 1, 5, 5]} for k in (1, 2, 3)]}
    job = run_import(project, admin_user, "coco", json_upload(doc), create_missing_classes=True)
    assert job.status == "done", job.errors
    assert job.result["classes_created"] == ["saw blade"]
    assert set(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == before | {"saw blade"}
    assert sorted(Annotation.objects.filter(project=project).values_list("label_class__name", flat=True)) == [
        "hammer", "hammer", "saw blade"]


def _ls_task(*results):
    return [{"data": {"image": "img1.png"}, "annotations": [{"result": list(results)}]}]


def _ls_region(kind, value, rid="r1"):
    return {"id": rid, "type": kind, "original_width": W, "original_height": H, "value": value}


@pytest.mark.django_db
def test_a_label_studio_relation_is_skipped_like_other_regions_without_an_object(target, admin_user):
    """Relations (standard in Label Studio exports, no 'value') failed the whole import."""
    project, _, _ = target
    doc = _ls_task(_ls_region("rectanglelabels", {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["hammer"]}),
                   {"type": "relation", "from_id": "r1", "to_id": "r2", "direction": "right"})
    job = run_import(project, admin_user, "labelstudio", json_upload(doc, name="tasks.json"))
    assert job.status == "done", job.errors
    assert Annotation.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_a_polygon_outside_the_image_names_the_images_real_size(target, admin_user):
    """The message said the 64x48 image was 63x47 (pixel centres end at width - 1)."""
    project, _, _ = target
    doc = _ls_task(_ls_region("polygonlabels", {"points": [[10, 10], [150, 10], [50, 50]], "polygonlabels": ["hammer"]}))
    job = run_import(project, admin_user, "labelstudio", json_upload(doc, name="tasks.json"))
    assert job.status == "failed"
    [error] = [e["error"] for e in job.errors]
    assert "reaches outside the image (64x48)" in error, error


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", [("score_metric", 1e308), ("score_vlm", -0.5), ("score_metric", "high")])
def test_a_native_score_outside_0_to_1_is_refused(target, admin_user, field, value):
    """1e308 was stored as the class score (and led the "most ambiguous first" order); "high" was dropped."""
    project, _, _ = target
    doc = [{"image": "img1.png", "detections": [{"bbox_xyxy": [1, 1, 9, 9], "class": "hammer", field: value}]}]
    job = run_import(project, admin_user, "native", json_upload(doc, name="predictions.json"))
    assert job.status == "failed"
    assert [e["error"] for e in job.errors] == [f"{field} must be a number from 0 to 1, got {str(value)!r}"], job.errors
    assert Annotation.objects.filter(project=project).count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("mask, message", [
    (base64.b64encode(b"not an image at all").decode(), "the shape's 'mask' is not a PNG image"),
    ("@@not base64@@", "the shape's 'mask' is not base64 text"),
    ("JPEG", "the shape's 'mask' is a JPEG image, not a PNG"),
])
def test_labelme_mask_that_is_not_a_png_says_so(target, admin_user, mask, message):
    """It said "cannot identify image file <_io.BytesIO object at 0x7ffb5de6a160>" (black-box api6 F12)."""
    project, _, _ = target
    if mask == "JPEG":
        out = io.BytesIO()
        PILImage.new("L", (10, 10), 1).save(out, "JPEG")
        mask = base64.b64encode(out.getvalue()).decode()
    doc = {"shapes": [{"label": "hammer", "points": [[1, 1], [10, 10]], "shape_type": "mask", "mask": mask}],
           "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}
    job = run_import(project, admin_user, "labelme", json_upload(doc))
    assert job.status == "failed"
    assert [e["error"] for e in job.errors] == [message], job.errors
