"""Builders for test data. Real rows in the real database, real image bytes."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from django.contrib.auth import get_user_model
from PIL import Image as PILImage
from pycocotools import mask as mask_utils

from backend.annotations.models import Annotation, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.images.models import Image
from backend.projects.models import LabelClass, Membership, Project


def make_user(username: str, password: str = "pw-for-tests-123"):
    return get_user_model().objects.create_user(username=username, password=password)


def make_staff(username: str = "root", *, superuser: bool = False, password: str = "pw-for-tests-123"):
    """An instance admin (is_staff), a superuser too if asked."""
    user = make_user(username, password=password)
    user.is_staff, user.is_superuser = True, superuser
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


def make_project(owner, name: str = "Tools", **fields) -> Project:
    from backend.projects.services import create_project

    return create_project(user=owner, name=name, **fields)


def add_member(project: Project, user, role: str) -> Membership:
    return Membership.objects.create(project=project, user=user, role=role)


def image_bytes(width: int = 64, height: int = 48, color=(200, 30, 30), fmt: str = "PNG", **save_kwargs) -> bytes:
    img = PILImage.new("RGB", (width, height), color)
    out = io.BytesIO()
    img.save(out, format=fmt, **save_kwargs)
    return out.getvalue()


def zip_bytes(entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def make_image(project: Project, *, width: int = 64, height: int = 48, seed: int = 0) -> Image:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.images.services import upload_images

    color = (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)
    report = upload_images(
        project=project, user=None, files=[SimpleUploadedFile(f"img{seed}.png", image_bytes(width, height, color))]
    )
    assert report.created, report.errors or report.duplicates
    return report.created[0]


def rect_rle(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> dict:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    encoded = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def make_class(project: Project, name: str = "hammer", **fields) -> LabelClass:
    return LabelClass.objects.create(project=project, name=name, **fields)


def make_model_annotation(image: Image, label_class: LabelClass | None = None, **fields) -> Annotation:
    rle = rect_rle(image.height, image.width, 4, 4, 20, 16)
    bbox, area = mask_geometry(rle)
    return Annotation.objects.create(
        project=image.project, image=image, label_class=label_class, mask_rle=rle, bbox=bbox, area=area,
        source=Source.MODEL, class_score=0.8, class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING,
        **fields,
    )


def synthetic_png(seed: int) -> bytes:
    """A PNG of ml.tiny's synthetic scene (shapes the tiny detector proposes boxes for)."""
    from ml.tiny import synthetic_image

    out = io.BytesIO()
    PILImage.fromarray(synthetic_image(seed)).save(out, format="PNG")
    return out.getvalue()
