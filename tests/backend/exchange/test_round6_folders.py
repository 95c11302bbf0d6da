"""Images uploaded from folders keep their folders in the name ('cams/a/IMG_1.png'); an import
naming the folders finds the right one of two like-named images (black-box ui5: every such
file was 'ambiguous' because imports compared base names only)."""
import pytest

from backend.annotations.models import Annotation
from backend.images.models import Image

from ..factories import make_class, make_image, make_project
from .helpers import json_upload, run_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def cams(admin_user):
    project = make_project(admin_user, name="Cams")
    make_class(project, "hammer")
    a, b = make_image(project, seed=1), make_image(project, seed=2)
    for image, name in ((a, "cams/camA/IMG_0001.png"), (b, "cams/camB/IMG_0001.png")):
        Image.objects.filter(pk=image.pk).update(original_name=name)  # as a folder upload names them
    return project, a, b


def _coco(*names):
    return {
        "images": [{"id": i, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(names, 1)],
        "categories": [{"id": 1, "name": "hammer"}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2 + i, 2, 10, 10]}
                        for i in range(1, len(names) + 1)],
    }


@pytest.mark.parametrize("given", [
    ("cams/camA/IMG_0001.png", "cams/camB/IMG_0001.png"),
    ("camA/IMG_0001.png", "camB\\IMG_0001.png"),  # a folder below, Windows separators
    ("./data/cams/camA/img_0001.PNG", "data/cams/camB/IMG_0001.png"),  # a folder above, case
])
def test_coco_names_with_folders_find_their_image(cams, admin_user, given):
    project, a, b = cams
    job = run_import(project, admin_user, "coco", json_upload(_coco(*given)))
    assert job.status == "done", job.errors
    assert [(x.image_id, x.bbox[0]) for x in Annotation.objects.filter(project=project).order_by("image_id")] == [
        (a.pk, 3), (b.pk, 4)]


def test_a_bare_name_stays_ambiguous(cams, admin_user):
    project, a, b = cams
    job = run_import(project, admin_user, "coco", json_upload(_coco("IMG_0001.png")))
    assert job.status == "failed"
    assert "is ambiguous" in job.errors[0]["error"] and f"{a.pk}, {b.pk}" in job.errors[0]["error"], job.errors


def test_labelme_and_native_read_the_folders_too(cams, admin_user):
    project, a, b = cams
    labelme = {"imagePath": "camB/IMG_0001.png", "imageHeight": 48, "imageWidth": 64,
               "shapes": [{"label": "hammer", "shape_type": "rectangle", "points": [[1, 1], [9, 9]]}]}
    job = run_import(project, admin_user, "labelme", json_upload(labelme, name="IMG_0001.json"))
    assert job.status == "done", job.errors
    native = [{"image": "cams/camA/IMG_0001.png",
               "detections": [{"class": "hammer", "bbox_xyxy": [1, 1, 9, 9]}]}]
    job = run_import(project, admin_user, "native", json_upload(native, name="predictions.json"))
    assert job.status == "done", job.errors
    assert sorted(Annotation.objects.filter(project=project).values_list("image_id", flat=True)) == [a.pk, b.pk]


def test_images_missing_from_the_project_come_with_what_to_do_first(cams, admin_user):
    """24 "not in this project" lines said nothing of uploading the images (an export zip holds
    them) before importing its annotations (black-box ui6 #12)."""
    project, a, b = cams
    job = run_import(project, admin_user, "coco", json_upload(_coco("table_01.png", "table_02.png")))
    assert job.status == "failed"
    assert job.errors[0] == {"item": "hint", "error": (
        "2 items name images this project does not have. Imports add objects to the project's images, matched by file "
        "name: upload the images first (an export zip with images can be uploaded as it is on the Upload page), then "
        "import again.")}
    assert [e["error"] for e in job.errors[1:]] == ["image 'table_01.png' is not in this project",
                                                   "image 'table_02.png' is not in this project"]


def test_an_upload_says_an_exports_annotation_file_is_for_the_import_page(admin_user):
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.images.services import upload_images

    from ..factories import image_bytes

    project = make_project(admin_user, name="Zip")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("images/a.png", image_bytes(20, 20))
        zf.writestr("annotations/instances.json", b'{"images": [], "annotations": [], "categories": []}')
    report = upload_images(project=project, user=admin_user, files=[SimpleUploadedFile("export.zip", out.getvalue())])
    assert len(report.created) == 1
    assert report.errors == [{"name": "export.zip/annotations/instances.json", "error": (
        "Not an image but an annotation or text file: skipped (annotation files go to the Import page).")}]


@pytest.mark.parametrize("given, expect", [
    ("a.png", None),  # a bare name two images have
    ("batch.zip/a.png", "zipped"),  # the exact stored name of one, with its folder (was "ambiguous")
    ("other.zip/a.png", None),  # folders neither has (went silently to 'a.png')
    ("http://host/x/a.png", None),
])
def test_an_exact_stored_name_wins_and_unknown_folders_stay_ambiguous(admin_user, given, expect):
    """'a.png' beside 'batch.zip/a.png' (a zip's entry): the exact name 'batch.zip/a.png' was refused
    as ambiguous while 'other.zip/a.png' or a URL went to 'a.png' without a word (black-box round 18)."""
    project = make_project(admin_user, name="Zipped")
    make_class(project, "hammer")
    plain, zipped = make_image(project, seed=3), make_image(project, seed=4)
    Image.objects.filter(pk=plain.pk).update(original_name="a.png")
    Image.objects.filter(pk=zipped.pk).update(original_name="batch.zip/a.png")
    job = run_import(project, admin_user, "coco", json_upload(_coco(given)))
    if expect is None:
        assert job.status == "failed" and "is ambiguous" in job.errors[0]["error"], job.errors
        assert not Annotation.objects.filter(project=project).exists()
    else:
        assert job.status == "done", job.errors
        image = {"plain": plain, "zipped": zipped}[expect]
        assert list(Annotation.objects.filter(project=project).values_list("image_id", flat=True)) == [image.pk]
