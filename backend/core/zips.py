"""Reading uploaded zips safely: entry by entry, with limits, never extracted to disk.

Each entry yields either its bytes or an error that names it, so one bad entry never costs the
good ones. Limits: entry count, total uncompressed bytes (counted while reading, not trusted
from the header) and compression ratio (zip bombs).
"""
from __future__ import annotations

import lzma
import stat
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ZipEntry:
    name: str
    data: bytes | None = None
    error: str | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.name).parts


class ZipRejected(Exception):
    """The archive as a whole cannot be read."""


# What reading one entry's data can raise: a bad CRC or header (BadZipFile), corrupt deflate,
# bzip2 (OSError) or LZMA data, a cut-off stream, a method zipfile cannot read (NotImplementedError).
ENTRY_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error,
                     lzma.LZMAError)

# The compression methods zipfile reads (stored, deflate, bzip2, LZMA); others by their names.
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_METHOD_NAMES = {9: "Deflate64", 93: "Zstandard", 95: "xz", 96: "JPEG", 97: "WavPack", 98: "PPMd",
                 99: "AES encryption"}


def raised_reading_zip(exc: BaseException) -> bool:
    """Whether `exc` came out of reading a zip entry's data (a corrupt or cut-off entry that a
    streaming reader met midway), not out of our own code."""
    if not isinstance(exc, ENTRY_READ_ERRORS):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.endswith(
        ("/zipfile.py", "/zipfile/__init__.py", "/bz2.py", "/lzma.py", "/_compression.py"))


def unreadable_method(info: zipfile.ZipInfo) -> str | None:
    """Why an entry's compression cannot be read (Windows Explorer and 7-Zip write Deflate64 for
    big files, password zips AES), or None."""
    if info.compress_type in _READABLE_METHODS:
        return None
    name = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
    return (f"compressed with {name}, which cannot be read here: zip it again with standard (deflate) "
            "compression, without a password")


def _unsafe_name(name: str) -> str | None:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute or Windows-style path refused"
    if any(part == ".." for part in PurePosixPath(name).parts):
        return "path with '..' refused"
    return None


def _skippable(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def fold_name(name: str, *, strip: bool = True) -> str:
    """A name as file systems compare names: NFC (macOS treats "Café" composed and decomposed
    as one name), case folded (Windows, macOS), and (`strip`) without trailing dots and spaces
    (Windows drops them: "b.png." and "b.png " are "b.png" there)."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return folded.rstrip(" .") if strip else folded


# An extractor keeps one of two entries of one name, and which one differs by tool: every entry
# of such a name is refused, as the export refuses to write one (docs/exchange.md).
SAME_NAME = ("another entry of the zip has this name (compared ignoring case, Unicode normalization and "
             "trailing dots and spaces, as Windows and macOS do); an extractor would keep only one")


def entry_key(name: str) -> str:
    """A zip entry's path as an extractor's file system sees it: each folder and the file name
    folded (fold_name), so "d./x.png" and "D/x.png" are one path as on Windows."""
    return "/".join(fold_name(part) for part in name.split("/"))


def clashing_names(names: Iterable[str]) -> set[str]:
    """The entry keys (entry_key) that two or more of `names` share."""
    return {key for key, n in Counter(entry_key(name) for name in names).items() if n > 1}


def open_zip(fileobj) -> zipfile.ZipFile:
    """A zip opened for reading whose entry names are read as their maker wrote them. A name
    without the UTF-8 flag is CP437 by the standard, and zipfile reads it so; but Info-ZIP on
    Linux and macOS's Archive Utility write UTF-8 without the flag, and a gallery folder
    'triangle ▲' became the class 'triangle Γû▓'. Such a name that is valid UTF-8 (which real
    CP437 text with accents almost never is) is read as UTF-8."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except UnicodeDecodeError as exc:
        # zipfile decodes a name flagged UTF-8 strictly; some Windows tools flag names in their
        # own code page (CP1251 'кот' as bytes that are not UTF-8).
        raise zipfile.BadZipFile(
            f"an entry name is marked as UTF-8 but is not UTF-8 (byte 0x{exc.object[exc.start]:02x}); "
            "zip the files again with a current zip tool") from None
    renamed = False
    for info in archive.filelist:
        if info.flag_bits & 0x800:
            continue
        raw = info.orig_filename.encode("cp437")  # CP437 maps every byte: the name's own bytes
        if raw.isascii():
            continue
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        # ZipInfo's own clean-up of a name (NUL cut, os.sep); orig_filename stays what the header
        # holds, which open() compares with the entry's local header.
        info.filename = zipfile.ZipInfo(name).filename
        renamed = True
    if renamed:
        archive.NameToInfo = {info.filename: info for info in archive.filelist}
    return archive


def entry_refusal(info: zipfile.ZipInfo, *, max_entry_bytes: int, total: int) -> str | None:
    """Why one entry is refused before it is read (a link, a password, a method zipfile lacks, a
    size or ratio past the limits, the zip's total reached with `total` bytes taken), or None.
    Image uploads (iter_zip) and imports (exchange.importing) refuse entries alike."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link refused"
    if info.flag_bits & 0x1:
        return "encrypted entry refused"
    method = unreadable_method(info)
    if method:
        return method
    if info.file_size > max_entry_bytes:
        return f"entry is larger than the limit of {max_entry_bytes} bytes"
    if info.compress_size and info.file_size / info.compress_size > settings.ZIP_MAX_RATIO:
        return f"compression ratio above {settings.ZIP_MAX_RATIO}:1 refused (zip bomb?)"
    if total + info.file_size > settings.ZIP_MAX_TOTAL_BYTES:
        return f"the zip's total size limit of {settings.ZIP_MAX_TOTAL_BYTES} bytes was reached"
    return None


def iter_zip(fileobj, *, max_entry_bytes: int | None = None) -> Iterator[ZipEntry]:
    max_entry_bytes = max_entry_bytes or settings.MAX_IMAGE_BYTES
    try:
        archive = open_zip(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipRejected(f"Not a readable zip archive: {exc}.") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > settings.ZIP_MAX_ENTRIES:
            raise ZipRejected(f"The zip has {len(infos)} entries; the limit is {settings.ZIP_MAX_ENTRIES} (ZIP_MAX_ENTRIES).")
        total = 0
        clashes = clashing_names(i.filename for i in infos if not (i.is_dir() or _skippable(i.filename)))
        for info in infos:
            name = info.filename
            problem = _unsafe_name(name)  # before the hidden-file skip: ".." starts with a dot
            if problem:
                yield ZipEntry(name, error=problem)
                continue
            if info.is_dir() or _skippable(name):
                continue
            if clashes and entry_key(name) in clashes:
                yield ZipEntry(name, error=SAME_NAME)
                continue
            refusal = entry_refusal(info, max_entry_bytes=max_entry_bytes, total=total)
            if refusal:
                yield ZipEntry(name, error=refusal)
                continue
            try:
                data = _read_bounded(archive, info, max_entry_bytes)
            except ENTRY_READ_ERRORS as exc:
                yield ZipEntry(name, error=f"unreadable entry: {exc}")
                continue
            if data is None:
                yield ZipEntry(name, error="entry is larger than its header says (zip bomb?)")
                continue
            total += len(data)
            yield ZipEntry(name, data=data)


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """Read at most `limit` bytes (and never more than the header declared); None when exceeded."""
    cap = min(limit, info.file_size)
    chunks, size = [], 0
    with archive.open(info) as fh:
        while True:
            chunk = fh.read(min(CHUNK, cap + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
    return b"".join(chunks)
