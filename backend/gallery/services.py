"""Writes for the reference gallery: exemplar uploads (files for one class, or an ImageFolder zip)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from backend.core.errors import DomainError, NotFound
from backend.core.files import create_with_file
from backend.core.uploads import UploadItem, iter_upload_items
from backend.projects.models import LabelClass, Project
from backend.projects.colors import distinct_colors
from backend.projects.services import gallery_changed

from .models import GalleryImage, HardNegative


@dataclass
class GalleryUploadReport:
    created: list[GalleryImage] = field(default_factory=list)
    created_classes: list[str] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def upload_exemplars(*, project: Project, user, files, class_id: int | None) -> GalleryUploadReport:
    """With class_id, every image goes to that class. Without it, images must come in a zip in
    ImageFolder layout (`<class name>/<file>`, optionally under one root folder); missing classes
    are created."""
    target = None
    if class_id is not None:
        target = LabelClass.objects.filter(project=project, pk=class_id).first()
        if target is None:
            raise DomainError(f"Class {class_id} does not exist in this project.")
    report = GalleryUploadReport()
    items = list(iter_upload_items(files))
    roots = _common_root(project, items)
    refused_folders: dict[str, dict] = {}  # folder path → its one error entry (per folder, not per file)
    for item in items:
        if item.error:
            report.errors.append({"name": item.name, "error": item.error})
            continue
        label_class = target or _class_from_path(project, item.name, roots, report, refused_folders)
        if label_class is None:
            continue
        _store_exemplar(project=project, user=user, label_class=label_class, item=item, report=report)
    if report.created:
        gallery_changed(project.pk)
    return report


def _common_root(project: Project, items: list[UploadItem]) -> set[str]:
    """Zip-internal folders that wrap the class folders (e.g. `dataset/1_screw_flat/a.jpg`,
    `dataset/2_hammer/b.jpg`). Otherwise the top folder names the class and deeper folders are
    only its subfolders (`wrench/sub/a.png` is a `wrench`). A top folder wraps class folders only
    when it is the zip's only folder, holds at least two folders with images, and no class of the
    project has its name (an image directly in it then has no class); or when it holds one folder
    only, which the project has a class of."""
    by_zip: dict[str, list[tuple[str, ...]]] = {}
    for item in items:
        parts = PurePosixPath(item.name).parts
        if len(parts) >= 3:  # '<zip>/<folder>/…'
            by_zip.setdefault(parts[0], []).append(parts)
    candidates, lone = {}, {}
    for zip_name, paths in by_zip.items():
        inner = {parts[2] for parts in paths if len(parts) >= 4}
        if len({parts[1] for parts in paths}) == 1 and len(inner) >= 2:
            candidates[zip_name] = paths[0][1]
        elif len({parts[1] for parts in paths}) == 1 and len(inner) == 1 and all(len(p) >= 4 for p in paths):
            lone[zip_name] = (paths[0][1], inner.pop())  # `dataset/hammer/a.jpg`: one folder inside one folder
    if not candidates and not lone:
        return set()
    names = [n.strip().lower() for n in candidates.values()] + [n.strip().lower() for pair in lone.values() for n in pair]
    taken = set(LabelClass.objects.annotate(lname=Lower("name")).filter(
        project=project, lname__in=names).values_list("lname", flat=True))
    roots = {f"{zip_name}/{top}" for zip_name, top in candidates.items() if top.strip().lower() not in taken}
    # A lone inner folder names the class only when the project has that class and not the outer
    # one: `wrench/sub/a.png` stays a wrench, `dataset/hammer/a.jpg` is no longer a class "dataset".
    return roots | {f"{zip_name}/{top}" for zip_name, (top, inner) in lone.items()
                    if inner.strip().lower() in taken and top.strip().lower() not in taken}


def _class_from_path(
    project: Project, name: str, roots: set[str], report: GalleryUploadReport, refused_folders: dict[str, dict],
) -> LabelClass | None:
    full = parts = PurePosixPath(name).parts
    for root in roots:
        if name.startswith(root + "/"):
            parts = (parts[0],) + parts[2:]
            break
    if len(parts) < 3:
        report.errors.append({
            "name": name,
            "error": "no class: choose a class, or upload a zip with one folder per class (ImageFolder layout)",
        })
        return None
    folder = "/".join(full[:len(full) - len(parts) + 2])  # the zip's class folder, root included
    refused = refused_folders.get(folder)
    if refused is not None:
        refused["skipped_files"] += 1
        return None
    try:
        class_name = _folder_class_name(parts[1])
    except ValueError as exc:
        entry = {"name": folder + "/", "error": f"folder '{parts[1][:60]}': {exc}; its images were not imported", "skipped_files": 1}
        refused_folders[folder] = entry
        report.errors.append(entry)
        return None
    label_class = LabelClass.objects.annotate(lname=Lower("name")).filter(project=project, lname=class_name.lower()).first()
    if label_class is None:
        try:
            with transaction.atomic():
                label_class = LabelClass.objects.create(
                    project=project, name=class_name, color=distinct_colors(project.pk, 1)[0])
            report.created_classes.append(class_name)
        except IntegrityError:
            label_class = LabelClass.objects.annotate(lname=Lower("name")).get(project=project, lname=class_name.lower())
    return label_class


def _folder_class_name(folder: str) -> str:
    """The class name a folder stands for, checked as `POST /classes/` checks a name (trimmed,
    not blank, at most the model's length, no NUL): a folder that is not a valid name is refused
    rather than made into an empty class or silently cut to a different one."""
    from rest_framework.exceptions import ValidationError

    from backend.projects.serializers import LabelClassSerializer, clean_class_name

    try:
        return clean_class_name(LabelClassSerializer().fields["name"].run_validation(folder))
    except ValidationError as exc:
        messages = exc.detail if isinstance(exc.detail, list) else [exc.detail]
        reason = " ".join(str(m).rstrip(".") for m in messages).replace("This field", "the class name")
        raise ValueError(f"not a valid class name: {reason}") from None


def _store_exemplar(*, project, user, label_class, item: UploadItem, report: GalleryUploadReport) -> None:
    image = item.image
    existing = GalleryImage.objects.filter(
        label_class=label_class, sha256=image.sha256, removed_at__isnull=True,
    ).values_list("pk", flat=True).first()
    if existing:
        report.duplicates.append({"name": item.name, "existing_id": existing})
        return
    created = create_with_file(
        f"projects/{project.pk}/gallery", image.extension, image.data,
        lambda stored: GalleryImage.objects.create(
            project=project, label_class=label_class, file=stored, original_name=item.name[:500],
            content_type=image.content_type, sha256=image.sha256, width=image.width, height=image.height,
            uploaded_by=user,
        ),
    )
    if created is None:
        report.duplicates.append({"name": item.name, "existing_id": None})
    else:
        report.created.append(created)


@transaction.atomic
def delete_exemplar(*, project: Project, exemplar_id: int) -> None:
    """Takes the exemplar out of the gallery (a new version); row and file stay for older versions."""
    exemplar = GalleryImage.objects.select_for_update().filter(
        project=project, pk=exemplar_id, removed_at__isnull=True,
    ).first()
    if exemplar is None:
        raise NotFound("Gallery image not found.")
    exemplar.removed_at = timezone.now()
    exemplar.save(update_fields=["removed_at"])
    gallery_changed(project.pk)


@transaction.atomic
def prune(*, project: Project, exemplar_ids: list[int], negative_ids: list[int]) -> dict:
    """Takes exemplars (uploaded or learned) and hard negatives out of the gallery in one new
    version. All or nothing: an id that is not live in this project is a 404 and nothing goes."""
    if not exemplar_ids and not negative_ids:
        raise DomainError("Choose at least one exemplar or hard negative to remove.")
    exemplars = list(GalleryImage.objects.select_for_update().filter(
        project=project, pk__in=exemplar_ids, removed_at__isnull=True).order_by("pk"))
    negatives = list(HardNegative.objects.select_for_update().filter(
        project=project, pk__in=negative_ids, removed_at__isnull=True).order_by("pk"))
    missing = sorted(set(exemplar_ids) - {e.pk for e in exemplars}) + sorted(set(negative_ids) - {n.pk for n in negatives})
    if missing:
        raise NotFound(f"Not in this project's gallery (or already removed): {', '.join(map(str, missing[:20]))}.")
    now = timezone.now()
    GalleryImage.objects.filter(pk__in=[e.pk for e in exemplars]).update(removed_at=now)
    HardNegative.objects.filter(pk__in=[n.pk for n in negatives]).update(removed_at=now)
    gallery_changed(project.pk)
    return {"exemplars": len(exemplars), "negatives": len(negatives)}

