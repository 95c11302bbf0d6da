"""Black-box round 13 (imports): LabelMe group ids that are not whole numbers, and two label
files of one image."""
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation

from .helpers import build_project, json_upload, run_import

pytestmark = pytest.mark.django_db


def _zip(entries: dict) -> SimpleUploadedFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return SimpleUploadedFile("up.zip", out.getvalue(), content_type="application/zip")


def test_labelme_group_id_true_is_not_group_1(admin_user):
    """True == 1 in Python: a shape with group_id true joined group 1's object."""
    project, (hammer, _), images = build_project(admin_user)
    square = lambda x: [[x, 2], [x + 6, 2], [x + 6, 8], [x, 8]]  # noqa: E731
    doc = {"imagePath": images[0].original_name, "imageHeight": 48, "imageWidth": 64, "shapes": [
        {"label": "hammer", "points": square(2), "group_id": 1, "shape_type": "polygon"},
        {"label": "hammer", "points": square(20), "group_id": True, "shape_type": "polygon"},
        {"label": "hammer", "points": square(40), "group_id": 1.5, "shape_type": "polygon"},
        {"label": "hammer", "points": square(50), "group_id": None, "shape_type": "polygon"},
    ]}
    job = run_import(project, admin_user, "labelme", json_upload(doc, name="a.json"))
    assert job.status == "failed", job.result
    errors = {e["item"]: e["error"] for e in job.errors}
    assert errors == {"a.json: shape 1": "group_id must be a whole number or null, not true",
                      "a.json: shape 2": "group_id must be a whole number or null, not 1.5"}, errors
    assert not Annotation.objects.filter(project=project).exists()


def test_two_yolo_label_files_of_one_image_are_ambiguous(admin_user):
    """labels/x.txt and train/labels/x.txt were both applied to image x."""
    project, _, images = build_project(admin_user)
    stem = images[0].original_name.rpartition(".")[0]
    line = "0 0.1 0.1 0.3 0.1 0.3 0.3\n"
    job = run_import(project, admin_user, "yolo", _zip({
        "data.yaml": "names:\n  0: hammer\n", f"labels/{stem}.txt": line, f"train/labels/{stem}.txt": line,
    }))
    assert job.status == "failed", job.result
    assert len(job.errors) == 1 and "is ambiguous" in job.errors[0]["error"], job.errors
    assert f"'labels/{stem}.txt'" in job.errors[0]["error"] + job.errors[0]["item"], job.errors
    assert not Annotation.objects.filter(project=project).exists()


def test_a_native_export_ranks_candidates_under_their_classes_names_now(source, admin_user):
    """Candidates keep the name their class had when they were scored: after a rename the native
    export (and the review page) still said the old name, a class no longer in the project."""
    import json

    from backend.projects.services import update_class

    from .helpers import export

    project, (hammer, _), _, _ = source
    update_class(project=project, class_id=hammer.pk, version=hammer.version, name="mallet")
    _, zf = export(project, admin_user, "native")
    det = json.loads(zf.read("predictions.json"))[0]["detections"][0]
    assert det["class"] == "mallet" and det["ranked"] == [{"name": "mallet", "score": 0.75}], det


@pytest.mark.parametrize("stored,written", [("cafe\u0301.png", "caf\u00e9.png"), ("caf\u00e9.png", "cafe\u0301.png")])
def test_an_image_name_matches_whether_its_accents_are_composed_or_not(admin_user, stored, written):
    """An image uploaded from macOS ('é' as e + combining accent) was "not in this project" for a
    file naming it with the composed 'é' (and the other way round): they look the same."""
    from backend.images.services import upload_images
    from tests.backend.factories import image_bytes

    project, (hammer, _), _ = build_project(admin_user)
    image = upload_images(project=project, user=admin_user,
                          files=[SimpleUploadedFile(stored, image_bytes(64, 48, (9, 99, 199)))]).created[0]
    coco = {"images": [{"id": 1, "file_name": written, "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "hammer"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]}]}
    job = run_import(project, admin_user, "coco", json_upload(coco))
    assert job.status == "done", job.errors
    assert Annotation.objects.filter(image=image, label_class=hammer).count() == 1
