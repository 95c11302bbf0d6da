"""What every format shares: the export writer interface, the import record, and safe names.

Export: a writer gets each image with its objects once (images arrive in id order, in chunks),
writes into an open zip, and may spool a big JSON document to a temp file on disk so memory
stays bounded. Import: a parser turns the uploaded files into Records (one per annotation to
create) and ItemErrors; the service resolves images/classes and rasterizes.
"""
from __future__ import annotations

import io
import json
import math
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image as PILImage

from backend.core import decode_budget
from backend.core import geometry as gate
from backend.core.zips import entry_key
from .. import geometry
from .brush import brush_decode

COPY_CHUNK = 1024 * 1024


# --------------------------------------------------------------------------- export


@dataclass
class ExportObject:
    id: int
    class_id: int
    class_name: str
    rle: dict
    bbox: list
    area: int
    det_score: float | None = None
    class_score: float | None = None
    candidates: list = field(default_factory=list)
    det_phrase: str = ""  # the detector's phrase (native vlm_class)
    # An instance class (e.g. "screwdriver-1234") exports as its type (class_id/class_name) plus these.
    instance_id: int | None = None
    instance_name: str | None = None

    def attributes(self) -> dict:
        """CVAT-style attributes of the object: the instance, when it is one."""
        if self.instance_id is None:
            return {}
        return {"instance_id": self.instance_id, "instance": self.instance_name}

    def mask(self) -> np.ndarray:
        return geometry.decode(self.rle)

    def window(self) -> tuple[np.ndarray, int, int]:
        """The mask inside its box (+1 px) and the box's (x, y): what polygon tracing needs,
        without decoding a full-size mask per object."""
        return geometry.decode_window(self.rle)


@dataclass
class ExportImage:
    id: int
    file_name: str  # unique within the export, a plain base name
    width: int
    height: int
    storage_name: str
    objects: list[ExportObject]

    def windows(self) -> list[tuple[np.ndarray, int, int]]:
        """Every object's window (see ExportObject.window), decoded together in one pass."""
        return geometry.decode_windows([obj.rle for obj in self.objects])


class ExportNameClash(ValueError):
    """Two entries of an export would share a name: the export fails rather than lose a file."""


@dataclass
class ExportContext:
    zf: zipfile.ZipFile
    classes: list[tuple[int, str]]  # (id, name) of every class of the project, by id
    segmentation: str  # "rle" | "polygon"
    include_images: bool
    project_name: str
    # Ids of the images whose file was gone when the export came to copy it (the image was
    # deleted while the export ran): their entries stay in the documents, the file is left out.
    missing_images: list[int] = field(default_factory=list)
    # Every entry name written so far, folded per folder (entry_key): Windows and macOS extractors (and
    # zipfile's read()) keep one of two entries whose names differ only by case, Unicode
    # normalization (macOS) or trailing dots and spaces (Windows), and lose the other.
    entries: set[str] = field(default_factory=set)

    def claim(self, arcname: str) -> None:
        """Reserve an entry name; two entries of one name would silently lose one file."""
        key = entry_key(arcname)
        if key in self.entries:
            raise ExportNameClash(f"two files of the export would be named {arcname!r} (names are compared "
                                  "ignoring case, Unicode normalization and trailing dots and spaces, as "
                                  "Windows and macOS do); rename one of the images")
        self.entries.add(key)

    def add_image(self, arcname: str, image: ExportImage) -> None:
        if not self.include_images:
            return
        self.claim(arcname)
        from django.core.files.storage import default_storage

        try:
            src = default_storage.open(image.storage_name, "rb")
        except FileNotFoundError:
            self.missing_images.append(image.id)
            return
        # Stored images are already compressed (JPEG/PNG/WebP): deflating them again wastes CPU.
        with src, self.zf.open(
            zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0)), "w", force_zip64=True
        ) as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)

    def write_text(self, arcname: str, text: str) -> None:
        self.claim(arcname)
        self.zf.writestr(_text_info(arcname), text.encode("utf-8"))


class JsonArraySpool:
    """A JSON array written item by item to a temp file, then copied into the zip."""

    def __init__(self):
        self.fh = tempfile.TemporaryFile("w+b")
        self.count = 0

    def append(self, item: Any) -> None:
        self.append_json(dumps(item))

    def append_json(self, text: str) -> None:
        """An item already written as JSON (a writer's hot path formats its rows itself)."""
        self.fh.write(((",\n" if self.count else "\n") + text).encode("utf-8"))
        self.count += 1

    def copy_into(self, dst) -> None:
        self.fh.seek(0)
        dst.write(b"[")
        shutil.copyfileobj(self.fh, dst, COPY_CHUNK)
        dst.write(b"\n]" if self.count else b"]")
        self.fh.close()


def open_entry(zf: zipfile.ZipFile, arcname: str):
    return zf.open(_text_info(arcname), "w", force_zip64=True)


# Deflate level of the JSON/text entries. At zlib's default (6) compressing took a fifth of a
# polygon export's time; 3 is ~3x faster, for an archive ~10% larger on varied data (+45% on
# the benchmark's 50 repeated shapes, where level 6 finds the long repeats).
TEXT_COMPRESSLEVEL = 3


def _text_info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = TEXT_COMPRESSLEVEL  # what ZipFile.writestr(compresslevel=) sets
    return info


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Writer:
    """One export format. Subclasses write per image in add() and close documents in finish()."""

    # True when a label file is named after the image's stem (LabelMe, YOLO): the export then
    # renames images whose stems clash, not only their names (selectors.iter_export_images).
    stem_named = False

    def begin(self, ctx: ExportContext) -> None:
        pass

    def add(self, ctx: ExportContext, image: ExportImage) -> None:
        raise NotImplementedError

    def finish(self, ctx: ExportContext) -> None:
        pass


# --------------------------------------------------------------------------- import


@dataclass
class Shape:
    """kind: rle | row_major | coco_polygons | center_polygons | box | crop_mask | array | brush
    (Label Studio's brush RLE, decoded only at the image's real size).
    `normalized` coordinates (YOLO) are fractions of the image's width/height."""

    kind: str
    data: Any
    normalized: bool = False


@dataclass
class Record:
    item: str  # names the object in error messages
    file_name: str  # the image's base name
    class_name: str | None
    shapes: list[Shape]
    size: tuple[int, int] | None = None  # (height, width) the file declares for the image
    det_score: float | None = None
    class_score: float | None = None
    ranked: list = field(default_factory=list)  # [{"name", "score"}] best first
    det_phrase: str = ""  # the detector's phrase (native vlm_class)
    instance_name: str | None = None  # an instance of class_name (its type), read from the attributes
    # Which entry of the file names the image (COCO: (document, image entry id)): two entries of
    # one file that resolve to one project image ("i.png" and "I.PNG") are refused as ambiguous.
    image_key: tuple | None = None
    # The name as the file gave it, folders included ('cams/a/IMG_1.jpg'): which of two images of
    # one base name it means, when the project's names keep their folders (folder uploads).
    file_path: str = ""

    @property
    def box_only(self) -> bool:
        return all(s.kind == "box" for s in self.shapes)


@dataclass
class ItemError:
    item: str
    error: str


@dataclass
class SourceFile:
    name: str
    data: bytes


class Parser:
    def parse(self, files: list[SourceFile]) -> Iterator[Record | ItemError]:
        raise NotImplementedError


# What a file that is not JSON usually is, by its first bytes.
_SIGNATURES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
               (b"PK\x03\x04", "a zip archive"), (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip archive"),
               (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
               (b"RIFF", "a RIFF file (WebP image?)"))


# Python's json messages, said plainly (the position is added after them).
_PLAIN = {
    "Expecting value": "a missing or invalid value",
    "Expecting ',' delimiter": "a comma is missing",
    "Expecting ':' delimiter": "a colon is missing",
    "Expecting property name enclosed in double quotes": "a key in double quotes was expected (a trailing comma?)",
    "Invalid control character at": "a control character (such as a raw line break) inside a string",
    "Unterminated string starting at": "a string that is never closed",
    "Extra data": "more text after the end of the JSON document",
    "Invalid \\escape": "an invalid backslash escape in a string",
    "Invalid \\uXXXX escape": "an invalid \\u escape in a string",
}
# ijson's (yajl's) first line, when the document is too big to locate the error again.
_YAJL_PLAIN = {"premature EOF": "the file ends before the JSON document does (cut short?)"}
# Up to this size a document the streaming parser refused is read again by Python's json, which
# says where (line and column); bigger ones get the streaming parser's own short reason.
LOCATE_LIMIT = 16 * 1024 * 1024


def _position_text(exc: json.JSONDecodeError) -> str:
    message = re.sub(r"\s*:?\s*line \d+ column \d+.*$", "", exc.msg)
    if not exc.doc.strip():
        return "the file is empty"
    if message in ("Expecting value", "Unterminated string starting at", "Expecting ',' delimiter",
                   "Expecting property name enclosed in double quotes") and not exc.doc[exc.pos:].strip():
        return f"the file ends before the JSON document does (cut short?), at line {exc.lineno}, column {exc.colno}"
    plain = _PLAIN.get(message, message[:1].lower() + message[1:])
    return f"{plain} at line {exc.lineno}, column {exc.colno}"


def locate_json_error(data: bytes) -> str | None:
    """Where Python's json finds `data` malformed, in words ("a comma is missing at line 3,
    column 7"); None when it parses (or is too big to read again)."""
    if len(data) > LOCATE_LIMIT:
        return None
    try:
        json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return f"text that is not valid UTF-8 (an invalid byte at byte {exc.start})"
    except json.JSONDecodeError as exc:
        return _position_text(exc)
    except (RecursionError, ValueError):
        return None
    return None


def malformed_message(exc: Exception, head: bytes, data: bytes | None = None) -> str:
    """A person's reading of a parser's complaint: what the file looks like when it is not JSON
    at all, else what is wrong and where ("malformed JSON: a comma is missing at line 3, column 7"),
    never the parser's raw text (ijson's came as "lexical error: invalid string in json text.
    … (right here) ------^", once as a bytes repr). `data`: the whole document when the caller
    has it, to locate an error the streaming parser reported without a position."""
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return f"not JSON: it looks like {what}"
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON: {_position_text(exc)}"
    located = locate_json_error(data) if data is not None else None
    if located:
        return f"malformed JSON: {located}"
    if isinstance(exc, UnicodeDecodeError):  # a streaming parser's offset is not the file's
        where = f" (an invalid byte at byte {exc.start})" if data is None else ""
        return f"malformed JSON: text that is not valid UTF-8{where}"
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # yajl's first line is its reason; the lines after it quote the input with a "------^" pointer.
    first = str(text).strip().splitlines()[0] if str(text).strip() else "unreadable"
    first = re.sub(r"^(lexical|parse) error:\s*", "", first).rstrip(".")
    first = _YAJL_PLAIN.get(first, first.replace("json text", "JSON text"))
    first = " ".join("".join(c if c.isprintable() else " " for c in first).split())
    return f"malformed JSON: {first[:200]}"


def load_json(source: SourceFile) -> tuple[Any, ItemError | None]:
    try:
        return json.loads(source.data.decode("utf-8-sig")), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, ItemError(source.name, malformed_message(exc, source.data[:8]))
    except RecursionError:  # imports refuse deep documents before (importing.py); never a crash
        return None, ItemError(source.name, "JSON nested too deep")


def image_base_name(raw: Any, *, allow_absolute: bool = False) -> tuple[str | None, str | None]:
    """(base name, None) or (None, why it is refused). Paths climbing out ('..') are refused
    everywhere; absolute paths too unless the format stores URLs (Label Studio)."""
    if not isinstance(raw, str) or not raw.strip():
        return None, "missing image file name"
    if not raw.isascii():
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\\ud800" in the JSON): no file is named so
            return None, f"file name {raw!r} contains an unpaired surrogate (\\ud800-\\udfff)"
    path = raw.replace("\\", "/")
    if any(part == ".." for part in path.split("/")):
        return None, f"file name {raw!r} contains '..'"
    if not allow_absolute and (path.startswith("/") or (len(path) > 1 and path[1] == ":")):
        return None, f"file name {raw!r} is an absolute path"
    base = posixpath.basename(path)
    if not base:
        return None, f"file name {raw!r} has no base name"
    return base, None


def image_path(raw: Any) -> str:
    """A file's relative path as given, with '/' separators and no leading './' or '/'
    (image_base_name has refused '..' and the rest already); '' when it has no folder."""
    path = raw.replace("\\", "/") if isinstance(raw, str) else ""
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    return path if "/" in path else ""


def instance_from(attributes: Any) -> str | None:
    """The instance name in an object's attributes (what ExportObject.attributes writes), if any."""
    if isinstance(attributes, dict) and isinstance(attributes.get("instance"), str) and attributes["instance"].strip():
        return attributes["instance"].strip()[:120]
    return None


def finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past float's range (np.isfinite raised TypeError on 2**64)
        return False


# --------------------------------------------------------------------------- rasterization


def rasterize(record: Record, height: int, width: int) -> np.ndarray:
    """The union of the record's shapes as an (h, w) uint8 mask; GeometryError if a shape does
    not fit this image."""
    if record.size is not None and tuple(record.size) != (height, width):
        raise geometry.GeometryError(
            f"the file says the image is {record.size[1]}x{record.size[0]}, the project's image is {width}x{height}"
        )
    # The cap COCO polygons and the API have, over all the object's parts (a LabelMe object may
    # be several shapes; YOLO's polygons are flat x y lists).
    vertices = sum(len(p) if p and isinstance(p[0], list) else len(p) // 2
                   for shape in record.shapes if shape.kind == "center_polygons" for p in shape.data)
    if vertices > gate.MAX_VERTICES:
        raise geometry.GeometryError(f"has more than {gate.MAX_VERTICES} vertices")
    out = np.zeros((height, width), dtype=np.uint8)
    for shape in record.shapes:
        out |= _shape_mask(shape, height, width)
    if not out.any():
        raise geometry.GeometryError("the mask is empty")
    return out


def _scaled(points, shape: Shape, height: int, width: int) -> np.ndarray:
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    if shape.normalized:
        # 6 decimals of a fraction are not exact pixels (0.895833 * 48 = 42.99998): round to
        # the pixel grid, as the polygon came from one.
        arr = np.rint(arr * np.array([width, height], dtype=float) * 1000) / 1000
        if shape.kind == "center_polygons":
            arr = np.rint(arr)
    return arr


def _shape_mask(shape: Shape, height: int, width: int) -> np.ndarray:
    try:
        return _gated_shape_mask(shape, height, width)
    except gate.GeometryError as exc:  # the item's error names the shape's problem, not an API field
        raise geometry.GeometryError(exc.reason) from None


def _gated_shape_mask(shape: Shape, height: int, width: int) -> np.ndarray:
    kind, data = shape.kind, shape.data
    if kind in {"rle", "row_major"}:
        size = data.get("size") if isinstance(data, dict) else None
        if not (isinstance(size, list) and len(size) == 2 and all(finite_number(v) for v in size)):
            raise geometry.GeometryError("mask size must be [height, width]")
        size = [int(v) for v in size]
        if size != [height, width]:
            raise geometry.GeometryError(f"mask size {size} does not match the image size [{height}, {width}]")
        if kind == "row_major":
            return gate.rle_from_runs_row_major(data["counts"], height=height, width=width)
        rle = gate.validate_rle({"size": size, "counts": data["counts"]}, height=height, width=width)
        return geometry.decode(rle)
    if kind == "coco_polygons":
        polygons = gate.validate_polygons(data, height=height, width=width, clip=False, tolerance=0.0)
        return geometry.fill_coco_polygons(polygons, height, width)
    if kind == "center_polygons":
        polys = [_scaled(p, shape, height, width) for p in data]
        for poly in polys:
            # Pixel-center coordinates run from 0 to w-1; half a pixel of slack for rounding.
            geometry.check_points_inside(poly, height - 1, width - 1, image=(width, height))
        # Normalized polygons are YOLO's: filled as Ultralytics fills them.
        fill = geometry.fill_yolo_polygons if shape.normalized else geometry.fill_center_polygons
        return fill([p.tolist() for p in polys], height, width)
    if kind == "box":
        (x0, y0), (x1, y1) = _scaled(data, shape, height, width)
        geometry.check_points_inside([[x0, y0], [x1, y1]], height, width)
        return geometry.fill_box((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), height, width)
    if kind == "crop_mask":
        x0, y0, crop = data
        png = crop if isinstance(crop, bytes) else None
        if png is not None:  # a PNG (LabelMe): its header's size is checked before it is decoded
            with PILImage.open(io.BytesIO(png)) as img:
                w, h = img.size
        else:
            h, w = crop.shape[:2]
        if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
            raise geometry.GeometryError(f"the mask ({w}x{h} at {x0},{y0}) reaches outside the image ({width}x{height})")
        if png is not None:
            with PILImage.open(io.BytesIO(png)) as img:
                try:
                    with decode_budget.budget.reserve(decode_budget.decode_cost(img)):
                        crop = np.asarray(img)
                except decode_budget.DecodeRefused as exc:
                    raise geometry.GeometryError(f"the mask PNG: {exc}") from None
            if crop.ndim == 3:
                crop = crop[..., 0]
            if crop.shape[:2] != (h, w):
                raise geometry.GeometryError("the mask PNG does not decode to the size its header gives")
        out = np.zeros((height, width), dtype=np.uint8)
        out[y0:y0 + h, x0:x0 + w] = crop.astype(bool)
        return out
    if kind == "brush":  # rasterize() compared the file's size with the image's: decode at the real one
        try:
            return brush_decode(data, height, width)
        except (ValueError, TypeError, OverflowError) as exc:
            raise geometry.GeometryError(f"the brush RLE could not be decoded: {exc}") from None
    if kind == "array":
        if data.shape != (height, width):
            raise geometry.GeometryError(f"mask size {list(data.shape)} does not match the image size [{height}, {width}]")
        return data.astype(np.uint8)
    raise geometry.GeometryError(f"unsupported shape kind {kind!r}")
