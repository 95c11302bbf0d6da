"""Reads for exchange: the jobs, and the images/annotations an export covers, in bounded chunks."""
from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterator

import numpy as np
from django.db.models import Exists, OuterRef, QuerySet

from backend.annotations.models import Annotation, ReviewState
from backend.core.errors import NotFound
from backend.images.models import Image
from backend.projects.models import LabelClass, Project

from backend.core.uploads import FORMAT_EXTENSIONS, IMAGE_EXTENSIONS
from backend.core.zips import fold_name

from .formats.base import ExportImage, ExportObject
from .models import ExportJob, ImportJob

CHUNK = 500


def export_jobs(project: Project) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(project=project).select_related("created_by").order_by("-id")


def import_jobs(project: Project) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(project=project).select_related("created_by").order_by("-id")


def get_export_job(project: Project, job_id: int) -> ExportJob:
    job = export_jobs(project).filter(pk=job_id).first()
    if job is None:
        raise NotFound("Export not found.")
    return job


def get_import_job(project: Project, job_id: int) -> ImportJob:
    job = import_jobs(project).filter(pk=job_id).first()
    if job is None:
        raise NotFound("Import not found.")
    return job


def export_images(project: Project, options: dict) -> QuerySet[Image]:
    """The images an export lists: by default only those with at least one exported object, so
    an approved set is not padded with unreviewed images that read as "nothing here";
    include_empty_images lists the rest too (still filtered by image_ids and status)."""
    images = Image.objects.filter(project=project)
    if options.get("image_ids"):
        images = images.filter(pk__in=options["image_ids"])
    if options.get("status"):
        images = images.filter(status__in=options["status"])
    if not options.get("include_empty_images"):
        images = images.filter(Exists(export_annotations(project, options).filter(image_id=OuterRef("pk"))))
    return images.order_by("id")


def export_annotations(project: Project, options: dict) -> QuerySet[Annotation]:
    """Approved only (both reviews accepted); with include_pending, pending too; rejected never.
    Objects without a class have no category to export and are left out; class_ids narrows to
    those classes."""
    allowed = [ReviewState.ACCEPTED, ReviewState.PENDING] if options.get("include_pending") else [ReviewState.ACCEPTED]
    annotations = Annotation.objects.filter(
        project=project, class_review__in=allowed, mask_review__in=allowed, label_class__isnull=False,
    )
    if options.get("class_ids"):
        annotations = annotations.filter(label_class_id__in=options["class_ids"])
    return annotations


def project_classes(project: Project) -> list[tuple[int, str]]:
    """The export's categories: type classes only. An instance is exported as its type's
    category plus an `instance` attribute (class_levels)."""
    return list(
        LabelClass.objects.filter(project=project, kind=LabelClass.Kind.CLASS).order_by("id").values_list("id", "name")
    )


def class_levels(project: Project) -> dict[int, tuple[int, str, int | None, str | None]]:
    """class id -> (type id, type name, instance id, instance name); a type is its own type."""
    rows = LabelClass.objects.filter(project=project).values_list("id", "name", "parent_id", "parent__name")
    return {
        pk: (parent_id, parent_name, pk, name) if parent_id is not None else (pk, name, None, None)
        for pk, name, parent_id, parent_name in rows
    }


def iter_export_images(project: Project, options: dict, *, chunk: int = CHUNK, by_stem: bool = False) -> Iterator[ExportImage]:
    """Images in id order with their objects; one annotation query per chunk of images, and
    only the columns an export needs (no embeddings). `by_stem`: the format names each image's
    label file after its stem (LabelMe, YOLO), so stems must be unique too, not only names."""
    names = class_levels(project)
    # Names (and stems) another image of the project shares, as file systems compare them (imports
    # match names case-insensitively over the whole project): every such image is exported as
    # '<stem>_<id>.<ext>', the first too.
    used: set[tuple[str, str]] = shared_names(project, by_stem=by_stem)
    rows = export_images(project, options).values_list("id", "original_name", "width", "height", "file")
    batch: list[tuple] = []
    for row in rows.iterator(chunk_size=chunk):
        batch.append(row)
        if len(batch) >= chunk:
            yield from _with_objects(project, options, batch, names, used, by_stem)
            batch = []
    if batch:
        yield from _with_objects(project, options, batch, names, used, by_stem)


def _with_objects(project, options, batch, names, used, by_stem=False) -> Iterator[ExportImage]:
    by_image: dict[int, list[ExportObject]] = {row[0]: [] for row in batch}
    annotations = export_annotations(project, options).filter(image_id__in=list(by_image)).order_by("image_id", "id")
    for ann_id, image_id, class_id, rle, bbox, area, det, cls, cands, phrase in annotations.values_list(
        "id", "image_id", "label_class_id", "mask_rle", "bbox", "area", "det_score", "class_score", "candidates",
        "det_phrase",
    ):
        type_id, type_name, instance_id, instance_name = names[class_id]
        by_image[image_id].append(ExportObject(
            id=ann_id, class_id=type_id, class_name=type_name, rle=rle, bbox=bbox, area=area,
            det_score=det, class_score=cls, candidates=cands or [], det_phrase=phrase,
            instance_id=instance_id, instance_name=instance_name,
        ))
    lookalikes = suffix_lookalikes(project, [(row[0], row[1], row[4]) for row in batch])
    for image_id, original_name, width, height, storage_name in batch:
        yield ExportImage(
            id=image_id, file_name=unique_file_name(original_name, image_id, storage_name, used, by_stem=by_stem,
                                                    rename=image_id in lookalikes),
            width=width, height=height, storage_name=storage_name, objects=by_image[image_id],
        )


def _name_keys(stem: str, ext: str, by_stem: bool) -> list[tuple[str, str]]:
    """What two images of an export must not share: the folded name (fold_name: case, Unicode
    normalization, trailing dots and spaces) and, `by_stem`, the folded stem their label files
    are named after."""
    keys = [("name", fold_name(f"{stem}.{ext}"))]
    if by_stem:
        keys.append(("stem", fold_name(stem, strip=False)))
    return keys


def _key_hash(key: tuple[str, str]) -> int:
    digest = hashlib.blake2b(f"{key[0]}:{key[1]}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def shared_names(project: Project, *, by_stem: bool = False) -> set[tuple[str, str]]:
    """The keys (_name_keys) that two or more of the project's images share: names an import
    could not match to one image, that an extractor would merge, or (`by_stem`) that would give
    two label files one name. The folding is Python's (casefold, NFC), so the names are read
    here, in chunks: a first pass keeps 8 bytes per key (a hash), a second only the keys whose
    hash repeats; memory stays small whatever the project's size."""
    rows = Image.objects.filter(project=project).values_list("id", "original_name", "file")

    def keys():
        for image_id, original_name, storage_name in rows.iterator(chunk_size=2000):
            yield from _name_keys(*export_parts(original_name, image_id, storage_name), by_stem)

    hashes = array("q", (_key_hash(key) for key in keys()))
    if len(hashes) < 2:
        return set()
    ordered = np.frombuffer(hashes, dtype=np.int64).copy()
    ordered.sort()
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not repeated:
        return set()
    counts = Counter(key for key in keys() if _key_hash(key) in repeated)
    return {key for key, n in counts.items() if n > 1}


# A generated export name's stem: '<the image's stem>_<its id>' (ASCII digits only).
_GENERATED = re.compile(r"^(.+)_([0-9]{1,18})$", re.DOTALL)


def _base(original_name: str) -> str:
    return posixpath.basename(original_name.replace("\\", "/"))


def export_parts(original_name: str, image_id: int, storage_name: str) -> tuple[str, str]:
    """(stem, extension) of the name an export gives an image before any '_<id>': the upload's
    base name without trailing dots and spaces, given the stored file's extension when it has
    none or one that is no image format's. Uploads are stored so now (core.uploads.image_file_name);
    an image stored before may be named "a.json" (a PNG: it would be LabelMe's label file of
    stem "a", or an entry an import reads as JSON) or "b.png.", and is exported as "a.json.png"
    or "b.png", which an import into the project resolves back (image_names.aliases)."""
    base = _base(original_name).rstrip(" .") or f"image_{image_id}"
    stored = storage_name.rpartition(".")[2].lower()
    if "." not in base or (stored in FORMAT_EXTENSIONS and base.rpartition(".")[2].lower() not in IMAGE_EXTENSIONS):
        base = f"{base}.{stored}"
    stem, _, ext = base.rpartition(".")
    return _fit_bytes(stem, STEM_MAX_BYTES) or f"image_{image_id}", ext


# File systems hold 255 bytes per name (NTFS 255 UTF-16 units): a stem of at most this many UTF-8
# bytes leaves room for '_<id>' and the extension. 300 x 'ğ' (604 bytes) was written as it was, and
# unzip lost that image and its label file ("File name too long", black-box round 18).
STEM_MAX_BYTES = 200


def _fit_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes at a character boundary, no joiner, mark or blank
    left dangling at the cut. Composed (NFC) first, as imports read names: the cut of a decomposed
    name and of its composed spelling (images_by_name) are then one name."""
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        return text
    raw = unicodedata.normalize("NFC", text).encode("utf-8", "surrogatepass")
    cut = raw[:limit].decode("utf-8", "ignore")
    while cut and (unicodedata.category(cut[-1]) in ("Mn", "Me", "Cf") or cut[-1] in " ."):
        cut = cut[:-1]
    return cut


def export_base_name(original_name: str, image_id: int, storage_name: str) -> str:
    """The base name an export writes for an image whose name no other image shares."""
    stem, ext = export_parts(original_name, image_id, storage_name)
    return f"{stem}.{ext}"


def suffix_lookalikes(project: Project, rows: list[tuple[int, str, str]]) -> set[int]:
    """Ids of the (id, original name, stored file) rows whose own name reads as another image's
    generated name: 'x_65.png' while image 65 of the project is 'x.png' (or 'x.jpg'). An import reads
    '<stem>_<id>.<ext>' as image <id> whenever that image's stem is <stem> (image_names.match_image),
    so such an image is exported under a generated name of its own ('x_65_67.png'), in every
    export, whatever its scope: no name an export writes can mean two images."""
    wanted: dict[int, list[tuple[int, str]]] = {}
    for image_id, original_name, storage_name in rows:
        found = _GENERATED.match(export_parts(original_name, image_id, storage_name)[0])
        if found and int(found[2]) != image_id:
            wanted.setdefault(int(found[2]), []).append((image_id, found[1].lower()))
    if not wanted:
        return set()
    out = set()
    for pk, name, storage_name in Image.objects.filter(project=project, pk__in=list(wanted)).values_list(
            "id", "original_name", "file"):
        stem = export_parts(name, pk, storage_name)[0].lower()
        out.update(image_id for image_id, head in wanted[pk] if head == stem)
    return out


def unique_file_name(original_name: str, image_id: int, storage_name: str, used: set[tuple[str, str]], *,
                     by_stem: bool = False, rename: bool = False) -> str:
    """The upload's base name (imports match on it; export_parts). A name `used` holds (one the
    project's images share, see shared_names, or one an earlier image of the export took, compared
    as file systems compare names; `by_stem`: the same for stems) gets the image id appended, so
    two 'IMG_0001.JPG' from different folders, or 'Café.png' spelt composed and decomposed, both
    survive and an import back finds each (image_names.match_image reads the suffix).
    `rename`: the name reads as another image's generated name (suffix_lookalikes)."""
    stem, ext = export_parts(original_name, image_id, storage_name)
    keys = _name_keys(stem, ext, by_stem)
    if rename or any(key in used for key in keys):
        stem = f"{stem}_{image_id}"
        keys = _name_keys(stem, ext, by_stem)
    used.update(keys)
    return f"{stem}.{ext}"
