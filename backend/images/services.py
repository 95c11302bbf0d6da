"""Writes for images: uploads (files or zips) and deletions."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.core.files.storage import default_storage
from django.db import connection, transaction

from backend.core import events
from backend.core.errors import NotFound, VersionConflict
from backend.core.files import create_with_file, read_stored, store_file
from backend.core.uploads import THUMBNAIL_EXTENSION, image_file_name, iter_upload_items, thumbnail_from_stored
from backend.projects.models import Project

from .models import Image
from .versions import check_api_version, with_api_version


@dataclass
class UploadReport:
    created: list[Image] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def upload_images(*, project: Project, user, files, from_upload: int | None = None,
                  file_sha256: str | None = None) -> UploadReport:
    """Store every valid image; report duplicates and bad files by name. Good files are kept
    even when others in the same upload fail (each image commits on its own). `from_upload`:
    the chunked upload these files came from (recorded on each image; see Image.from_upload).
    `file_sha256`: the SHA-256 of the one file in `files`, already computed by the caller. A file
    whose exact bytes are stored already is a duplicate without being decoded again (those bytes
    were validated when stored); decoding is most of an upload's cost."""
    report = UploadReport()
    own = set()  # images this upload's earlier run stored, reported as created
    if file_sha256 is not None:
        (only,) = files
        if _known(report, own, project, file_sha256, only.name, from_upload):
            return report
    for item in iter_upload_items(files, file_sha256=file_sha256):
        if item.error:
            report.errors.append({"name": item.name, "error": item.error})
            continue
        image = item.image
        # (The file's own hash was looked up above; a file stored concurrently meanwhile is
        # caught by the unique (project, sha256) below.)
        if image.sha256 != file_sha256 and _known(report, own, project, image.sha256, item.name, from_upload):
            continue
        # The thumbnail is stored first so the row never points at a missing one.
        thumb = store_file(f"projects/{project.pk}/thumbs", THUMBNAIL_EXTENSION, image.thumbnail) if image.thumbnail else ""

        def create(stored: str, item=item, image=image, thumb=thumb) -> Image:
            row = Image.objects.create(
                project=project, file=stored, original_name=item.stored_name, content_type=image.content_type,
                sha256=image.sha256, size_bytes=len(image.data), width=image.width, height=image.height,
                uploaded_by=user, thumbnail=thumb, from_upload=from_upload,
            )
            events.emit(project.pk, "image.created", image=row.pk)
            return row

        created = create_with_file(f"projects/{project.pk}/images", image.extension, image.data, create,
                                   source_path=item.source_path)
        if created is None:  # the same bytes arrived concurrently
            if thumb:
                default_storage.delete(thumb)
            existing = Image.objects.filter(project=project, sha256=image.sha256).values_list("pk", flat=True).first()
            report.duplicates.append({"name": item.name, "existing_id": existing})
            continue
        report.created.append(created)
    return report


def _known(report: UploadReport, own: set, project: Project, sha256: str, name: str, from_upload: int | None) -> bool:
    """Report a file whose bytes the project already has; False: they are new."""
    existing = Image.objects.filter(project=project, sha256=sha256).first()
    if existing is None:
        return False
    # (`name` is the file's name as sent when its bytes were not decoded yet, so the stored one
    # is that name given the existing image's extension: image_file_name.)
    if (from_upload is not None and existing.from_upload == from_upload
            and existing.original_name in (name[:500], image_file_name(name, existing.content_type))
            and existing.pk not in own):
        # The same file of the same upload: its first run stored it before losing the database.
        own.add(existing.pk)
        report.created.append(existing)
    else:
        report.duplicates.append({"name": name, "existing_id": existing.pk})
    return True


def _refuse_held(images: list[Image], *, user, force: bool) -> None:
    """An image someone else holds (a claim) is not deleted under them unless the admin forces it,
    as every other write on it is refused (black-box round 15: a held image went without a word)."""
    from .claims import ClaimConflict, active_claimant

    if force:
        return
    held = [(im, holder) for im in images if (holder := active_claimant(im)) is not None
            and holder.pk != getattr(user, "pk", None)]
    if not held:
        return
    names = ", ".join(f"'{im.original_name}' ({holder.username})" for im, holder in held[:5])
    more = f" and {len(held) - 5} more" if len(held) > 5 else ""
    raise ClaimConflict(
        f"{'This image is' if len(images) == 1 else f'{len(held)} of these images are'} open by someone now: "
        f"{names}{more}. Nothing was deleted; delete with ?force=1 to take {'it' if len(held) == 1 else 'them'} "
        "from under them.",
        extra={"claimed": [{"image": im.pk, "claimed_by": holder.username} for im, holder in held]})


@transaction.atomic
def delete_image(*, project: Project, image_id: int, version: int | None, user=None, force: bool = False) -> None:
    image = Image.objects.select_for_update().filter(project=project, pk=image_id).first()
    if image is None:
        raise NotFound("Image not found.")
    check_api_version(image, version)
    _refuse_held([image], user=user, force=force)
    _delete_locked(project, [image], user)


def _delete_locked(project: Project, images: list[Image], user) -> None:
    """Delete these locked, checked images: their rows (objects and trail cascade), their files
    after commit, the jobs they leave empty, and one image.deleted notice each."""
    from backend.jobs.models import PrelabelJobImage
    from backend.jobs.services import forget_deleted_images

    ids = [im.pk for im in images]
    names = [n for im in images for n in (im.file.name, im.thumbnail, im.rendition) if n]
    jobs = set(PrelabelJobImage.objects.filter(image_id__in=ids).values_list("job_id", flat=True))
    Image.objects.filter(pk__in=ids).delete()
    forget_deleted_images(jobs)  # a job whose images all went must not stay "running"
    transaction.on_commit(lambda: [default_storage.delete(n) for n in names])
    # Who: the reviewer who had it open reads "deleted by olga", not "by someone else".
    by = getattr(user, "username", None)
    for image_id in ids:
        events.emit(project.pk, "image.deleted", image=image_id, by=by)


BULK_DELETE_MAX = 1000


@transaction.atomic
def delete_images(*, project: Project, versions: dict[int, int], user=None, force: bool = False) -> list[int]:
    """Several images at once, all or none ({image id: version as the client read it}): clearing a
    set meant a click and a confirm per image. Any image gone or changed meanwhile refuses the
    whole call (404 / 409 naming them); nothing is deleted then. Returns the ids deleted."""
    ids = sorted(versions)
    images = list(with_api_version(Image.objects.select_for_update().filter(project=project, pk__in=ids)).order_by("id"))
    missing = sorted(set(ids) - {im.pk for im in images})
    if missing:
        raise NotFound(f"Image(s) not in this project (deleted meanwhile?): {', '.join(map(str, missing[:20]))}; "
                       "nothing was deleted.")
    changed = [im.pk for im in images if im.api_version != versions[im.pk]]
    if changed:
        raise VersionConflict(f"{len(changed)} of these images changed since you loaded them; nothing was deleted. "
                              "Reload the list and delete again.", extra={"changed": changed})
    _refuse_held(images, user=user, force=force)
    _delete_locked(project, images, user)
    return ids


def ensure_rendition(image: Image, *, missing: bool = False) -> str:
    """The stored name of the image's display PNG (display.png_rendition), made now if it has none."""
    from . import display

    return _derived(image, "rendition", "renditions", "png", missing,
                    lambda: display.png_rendition(read_stored(image.file.name), image.original_name))


def ensure_thumbnail(image: Image, *, missing: bool = False) -> str:
    """The image's thumbnail name, made now for images stored before thumbnails existed.

    Not a user-visible change, so no version bump and no event."""
    return _derived(image, "thumbnail", "thumbs", THUMBNAIL_EXTENSION, missing,
                    lambda: thumbnail_from_stored(read_stored(image.file.name)))


def _derived(image: Image, field: str, folder: str, extension: str, missing: bool, make) -> str:
    """The stored name of a file made from the image's (`field`: "thumbnail", "rendition"), made
    now with `make()` if it has none, or if `missing`: its stored file is gone (a disk restored
    without it answered 404 for good). Two requests racing: the first stored name wins and the
    loser's file is deleted; the image deleted meanwhile: the file is deleted and a 404."""
    if missing and getattr(image, field):
        Image.objects.filter(pk=image.pk, **{field: getattr(image, field)}).update(**{field: ""})
        setattr(image, field, "")
    if getattr(image, field):
        return getattr(image, field)
    name = store_file(f"projects/{image.project_id}/{folder}", extension, make())
    with transaction.atomic(), connection.cursor() as cursor:
        # A project deletion holds its row FOR UPDATE while it lists the files to delete: waited
        # for here, so the name is not written after that list was made (the PNG stayed on disk).
        cursor.execute("SELECT 1 FROM projects_project WHERE id = %s FOR KEY SHARE", [image.project_id])
        written = Image.objects.filter(pk=image.pk, **{field: ""}).update(**{field: name})
    if written:
        setattr(image, field, name)
        return name
    default_storage.delete(name)
    current = Image.objects.filter(pk=image.pk).values_list(field, flat=True).first()
    if not current:
        raise NotFound("Image not found.")
    setattr(image, field, current)
    return current
