"""An import's upload: one file, or the entries of a zip the format reads, opened lazily, with
backend.core.zips' refusals and the zip's own errors."""
from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage

from backend.core.zips import SAME_NAME, clashing_names, entry_key, entry_refusal, open_zip

from .formats.base import image_base_name
from .models import ImportJob

# Entries of an uploaded zip each format reads; anything else (e.g. the images) is skipped.
READS = {
    "coco": (".json",), "labelme": (".json",), "native": (".json",), "labelstudio": (".json",),
    "yolo": (".txt", ".yaml", ".yml"),
}


@dataclass
class UploadEntry:
    """One file of the upload, opened on demand: a parser streams it (`open()`, possibly twice)
    or reads it whole (`data`, for formats made of many small files)."""

    name: str
    opener: Callable[[], IO[bytes]]

    def open(self) -> IO[bytes]:
        return self.opener()

    @property
    def data(self) -> bytes:
        with self.open() as fh:
            return fh.read()


@contextmanager
def open_upload(job: ImportJob) -> Iterator[tuple[list[UploadEntry], list[dict]]]:
    """The upload's entries the format reads, and the errors of the zip itself."""
    with default_storage.open(job.upload_file, "rb") as fh:
        if not fh.read(4).startswith(b"PK"):
            yield [UploadEntry(job.upload_name or "upload.json", lambda: default_storage.open(job.upload_file, "rb"))], []
            return
        fh.seek(0)
        errors = _unsafe_entries(fh, job.upload_name)
        fh.seek(0)
        try:
            archive = open_zip(fh)
        except (zipfile.BadZipFile, OSError) as exc:
            yield [], errors + [{"item": job.upload_name, "error": f"Not a readable zip archive: {exc}."}]
            return
        with archive:
            entries, problems = _zip_entries(archive, job.upload_name, READS[job.format])
            yield entries, errors + problems


def _zip_entries(archive: zipfile.ZipFile, upload_name: str, wanted: tuple) -> tuple[list[UploadEntry], list[dict]]:
    """The wanted entries, opened lazily (zipfile streams and stops at the declared size), with
    backend.core.zips' refusals; JSON entries may be as big as an upload, since they stream."""
    infos = archive.infolist()
    if len(infos) > settings.ZIP_MAX_ENTRIES:
        return [], [{"item": upload_name, "error": f"The zip has {len(infos)} entries; the limit is "
                                                   f"{settings.ZIP_MAX_ENTRIES} (ZIP_MAX_ENTRIES)."}]
    entries, errors, total = [], [], 0
    clashes = clashing_names(info.filename for info in infos if not info.is_dir())
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if info.is_dir() or not name.lower().endswith(wanted) or any(p.startswith(".") for p in parts) or parts[0] == "__MACOSX":
            continue  # '..' and absolute names were reported by _unsafe_entries
        if clashes and entry_key(name) in clashes:
            problem = SAME_NAME
        elif "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            problem = "absolute or Windows-style path refused"
        else:
            problem = entry_refusal(info, max_entry_bytes=settings.MAX_UPLOAD_BYTES, total=total)
        if problem:
            errors.append({"item": f"{upload_name}/{name}", "error": problem})
            continue
        total += info.file_size
        entries.append(UploadEntry(name, functools.partial(archive.open, info)))
    return entries, errors


def _unsafe_entries(fh, upload_name: str) -> list[dict]:
    """Dot-entries are skipped as hidden files, '../x' among them; an import refuses them."""
    try:
        names = open_zip(fh).namelist()
    except (zipfile.BadZipFile, OSError):
        return []  # reported when the archive is opened
    errors = []
    for name in names:
        _, why = image_base_name(name)
        if why and ("'..'" in why or "absolute" in why):
            errors.append({"item": f"{upload_name}/{name}", "error": why.replace("file name", "zip entry")})
    return errors
