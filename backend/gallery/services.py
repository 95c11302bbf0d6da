"""Writes for the reference gallery: exemplar uploads (files for one class, or an ImageFolder zip)."""
from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from backend.core.errors import DomainError, NotFound
from backend.core.files import create_with_file
from backend.core.text import lookalike_problem
from backend.core.uploads import UploadItem, iter_upload_items
from backend.core.zips import _skippable, _unsafe_name, open_zip
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
    # Files added to their class whose exact bytes are also a live exemplar of another class
    # (one picture as "hammer" and "wrench" makes the matcher's margin 0):
    # {"name", "id" (the new exemplar), "also_in": [{"class_id", "class_name", "exemplar_id"}]}.
    also_in: list[dict] = field(default_factory=list)


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
    # The class folders are read from the entry names alone (no image is decoded or kept), then the
    # images are validated and stored one at a time: memory does not grow with the zip's entries.
    names = list(_upload_names(files))
    roots = _common_root(project, names)
    if target is None:
        _check_new_classes(project, names, roots)
    refused_folders: dict[str, dict] = {}  # folder path → its one error entry (per folder, not per file)
    for item in iter_upload_items(files):
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


def _upload_names(files) -> Iterator[str]:
    """The names iter_upload_items gives the upload's items, in its order, read from the zips'
    directories without reading any entry (`<zip name>/<entry path>`; a plain file's own name;
    a zip that cannot be opened is one item named after it)."""
    for upload in files:
        name = getattr(upload, "name", "upload")
        upload.seek(0)
        head = upload.read(4)
        upload.seek(0)
        if not (head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06")):
            yield name
            continue
        try:
            with open_zip(upload) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError):
            infos = None
        finally:
            upload.seek(0)
        if infos is None or len(infos) > settings.ZIP_MAX_ENTRIES:
            yield name  # iter_zip refuses the whole archive: one error item
            continue
        for info in infos:
            # As iter_zip: an unsafe name is an (error) item even as a folder; folders and hidden
            # entries are no items.
            if _unsafe_name(info.filename) or not (info.is_dir() or _skippable(info.filename)):
                yield f"{name}/{info.filename}"


def _check_new_classes(project: Project, names: list[str], roots: set[str]) -> None:
    """An ImageFolder zip creates a class per new folder: at most MAX_NEW_CLASSES (as imports),
    refused before anything is stored or created."""
    from backend.exchange.importing import MAX_NEW_CLASSES

    wanted: set[str] = set()
    for name in names:
        folder = _class_folder(name, roots)
        if folder is None:
            continue
        try:
            wanted.add(_folder_class_name(folder).lower())
        except ValueError:
            continue  # refused per folder later; creates nothing
    if len(wanted) <= MAX_NEW_CLASSES:
        return
    existing = set(LabelClass.objects.annotate(lname=Lower("name")).filter(project=project).values_list(
        "lname", flat=True))
    new = len(wanted - existing)
    if new > MAX_NEW_CLASSES:
        raise DomainError(
            f"The zip has {new} folders that would become new classes; at most {MAX_NEW_CLASSES} new classes "
            f"are created at once. Create the classes first, or upload fewer folders at a time. Nothing was added.")


def _class_folder(name: str, roots: set[str]) -> str | None:
    """The class folder an item's path names (ImageFolder layout, `roots` skipped), or None."""
    parts = PurePosixPath(name).parts
    for root in roots:
        if name.startswith(root + "/"):
            parts = (parts[0],) + parts[2:]
            break
    return parts[1] if len(parts) >= 3 else None


def _common_root(project: Project, names: list[str]) -> set[str]:
    """Zip-internal folders that wrap the class folders (e.g. `dataset/1_screw_flat/a.jpg`,
    `dataset/2_hammer/b.jpg`). Otherwise the top folder names the class and deeper folders are
    only its subfolders (`wrench/sub/a.png` is a `wrench`). A top folder wraps class folders only
    when it is the zip's only folder, holds at least two folders with images, and no class of the
    project has its name (an image directly in it then has no class); or when it holds one folder
    only, which the project has a class of."""
    by_zip: dict[str, list[tuple[str, ...]]] = {}
    for name in names:
        parts = PurePosixPath(name).parts
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
        problem = lookalike_problem(class_name)  # a new class: as POST /classes/ (an existing one is matched)
        if problem:
            entry = {"name": folder + "/", "error": f"folder '{parts[1][:60]}': {problem[:1].lower()}{problem[1:-1]}; "
                     "its images were not imported", "skipped_files": 1}
            refused_folders[folder] = entry
            report.errors.append(entry)
            return None
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
        return clean_class_name(LabelClassSerializer().fields["name"].run_validation(folder), new=False)
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
        return
    report.created.append(created)
    elsewhere = list(GalleryImage.objects.filter(
        project=project, sha256=image.sha256, removed_at__isnull=True,
    ).exclude(label_class=label_class).order_by("label_class__name", "pk").values_list(
        "label_class_id", "label_class__name", "pk"))
    if elsewhere:
        report.also_in.append({
            "name": item.name, "id": created.pk, "class_name": label_class.name,
            "also_in": [{"class_id": c, "class_name": n, "exemplar_id": pk} for c, n, pk in elsewhere],
        })


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

