"""Exports name files within what file systems hold (255 bytes a name): 300 x 'ğ' (604 bytes) was
written as it was and unzip lost that image and its label file (black-box round 18)."""
import pytest

from backend.annotations.models import Annotation
from backend.images.models import Image

from .helpers import annotate, export, rect, run_import, zip_upload

pytestmark = pytest.mark.django_db

FORMATS = ["coco", "labelme", "yolo", "native", "labelstudio"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_names_are_cut_to_fit_and_come_back_on_import(target, admin_user, fmt):
    project, classes, images = target
    long_names = ["\u011f" * 300 + ".png", "\u011f" * 300 + "x.png", "e\u0301" * 150 + ".png"]
    for image, name, k in zip(images, long_names, range(3)):
        Image.objects.filter(pk=image.pk).update(original_name=name)
        annotate(image, classes[0], rect(2, 10 + k * 5, 3, 12 + k * 5))
    _, zf = export(project, admin_user, fmt)
    for name in zf.namelist():
        for part in name.split("/"):
            assert len(part.encode()) <= 255, (len(part.encode()), part[:40])
    before = sorted(Annotation.objects.filter(project=project).values_list("image_id", flat=True))
    Annotation.objects.filter(project=project).delete()
    job = run_import(project, admin_user, fmt, zip_upload(zf), as_accepted=True)
    assert job.status == "done", job.errors
    assert sorted(Annotation.objects.filter(project=project).values_list("image_id", flat=True)) == before
