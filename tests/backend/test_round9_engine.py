"""Round 9 (bb-ml9): what a job gives the models for high-bit images (finding 5), and item errors
that name the image without server paths or object reprs (finding 9)."""
import io
import re

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from PIL import Image as PILImage

from backend.jobs import engine, tasks
from backend.jobs.engine import decode_rgb


def _png16(values: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", values.astype(np.uint16))
    assert ok
    return encoded.tobytes()


def test_a_12_bit_scan_in_a_16_bit_png_is_scaled_not_white():
    values = np.arange(0, 4096, dtype=np.uint16).reshape(64, 64)  # every 12-bit value once
    data = _png16(values)
    assert PILImage.open(io.BytesIO(data)).mode.startswith("I")
    rgb = decode_rgb(data)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert (rgb == 255).mean() < 0.01  # was 93.8 %: convert("RGB") clipped everything above 255
    want = (values * (255 / 4095)).astype(np.uint8)  # the thumbnail's scaling (make_thumbnail)
    assert all(np.array_equal(rgb[:, :, c], want) for c in range(3))


def test_32_bit_float_grey_is_scaled_too():
    values = np.linspace(0, 1000, 40 * 50, dtype=np.float32).reshape(40, 50)
    out = io.BytesIO()
    PILImage.fromarray(values, "F").save(out, format="TIFF")
    rgb = decode_rgb(out.getvalue())
    assert (rgb == 255).mean() < 0.01
    assert np.array_equal(rgb[:, :, 0], np.clip(values.astype(np.float64) * (255 / 1000), 0, 255).astype(np.uint8))


@pytest.fixture
def storage(tmp_path, monkeypatch):
    fs = FileSystemStorage(location=str(tmp_path / "media"))
    monkeypatch.setattr(engine, "default_storage", fs)
    return fs


def test_item_errors_name_the_image_and_hide_paths_and_reprs(storage, monkeypatch):
    good = io.BytesIO()
    PILImage.new("RGB", (40, 30), (10, 200, 30)).save(good, format="PNG")
    storage.save("projects/7/images/trunc.png", ContentFile(good.getvalue()[:60]))
    storage.save("projects/7/images/junk.png", ContentFile(b"not an image at all"))
    files = {1: ("projects/7/images/gone.png", "Scan 1.png"), 2: ("projects/7/images/junk.png", "photo two.png"),
             3: ("projects/7/images/trunc.png", "half.png")}
    failed = {}
    monkeypatch.setattr(tasks.services, "fail_items",
                        lambda *, job_id, image_ids, error: failed.update({i: error for i in image_ids}))
    job = type("Job", (), {"pk": 1, "kind": "prelabel"})()
    assert tasks._annotate(job, None, None, None, tasks._read_images(files, [1, 2, 3])) == ([], [], None)
    assert failed == {
        1: "could not read the image 'Scan 1.png': the stored file is missing",
        2: "could not read the image 'photo two.png': the stored file is not a readable image",
        3: "could not read the image 'half.png': the stored file is truncated",
    }


def test_other_item_errors_lose_paths_and_reprs():
    exc = OSError(2, "No such file or directory", "/srv/razmetka/var/media/models/head-p1-r2.npz")
    assert engine.public_text(exc) == "No such file or directory: 'head-p1-r2.npz'"
    said = engine.item_error(ValueError(f"cannot identify image file {io.BytesIO()!r}"))
    assert said == "ValueError: cannot identify image file <_io.BytesIO>"
    assert not re.search(r"0x[0-9a-f]+|/srv/", said)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_names_its_unreadable_images(celery_worker):
    from backend.images.models import Image
    from backend.jobs import services
    from backend.jobs.models import JobStatus

    from .test_jobs import build_project, wait_for_job

    owner, project, _ = build_project(n_images=3)
    missing, junk, _ = Image.objects.filter(project=project).order_by("id")
    default_storage.delete(missing.file.name)
    with default_storage.open(junk.file.name, "wb") as fh:
        fh.write(b"garbage")
    job = wait_for_job(services.start_job(project=project, user=owner).pk)
    assert job.status == JobStatus.DONE and job.failed == 2
    errors = dict(job.items.filter(status="failed").values_list("image_id", "error"))
    assert errors == {
        missing.pk: f"could not read the image {missing.original_name!r}: the stored file is missing",
        junk.pk: f"could not read the image {junk.original_name!r}: the stored file is not a readable image",
    }
