"""Which of the project's images a file's name means: the name itself, the names an image
answers to (an upload's added extension, an export's name for it) and the names exports generate
for images that share a name ('<stem>_<id>.<ext>'). Compared case-folded and composed (NFC)."""
from __future__ import annotations

import posixpath
import re
import unicodedata

from backend.core.uploads import has_format_extension
from backend.images.models import Image

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")  # Label Studio prefixes uploaded file names with a hash


class ImagesByName(dict):
    """Lowercased base name (and '<stem>.*', for YOLO) -> [(id, height, width)] of the project's
    images; `aliases` the same for the names an image answers to only when no image has the name
    itself (see aliases)."""

    def __init__(self):
        super().__init__()
        self.aliases: dict[str, list[tuple[int, int, int]]] = {}
        self.paths: dict[int, str] = {}  # id -> the name with its folders, lowercased, '/'-separated


def images_by_name(project) -> ImagesByName:
    from .selectors import export_base_name

    found = ImagesByName()
    rows = Image.objects.filter(project=project).values_list("id", "original_name", "width", "height", "file")
    for pk, name, width, height, stored in rows:
        name = unicodedata.normalize("NFC", name)  # as match_image reads the file's names
        entry = (pk, height, width)
        found.paths[pk] = name.replace("\\", "/").lower()
        base = posixpath.basename(found.paths[pk])
        exported = export_base_name(name, pk, stored).lower()
        found.setdefault(base, []).append(entry)
        # YOLO labels name only the stem ('<stem>.*'), the stem of the name exports write: an image
        # 'a.json' stored before round 5 is exported as 'a.json.png' with 'labels/a.json.txt'.
        found.setdefault(f"{exported.rpartition('.')[0] or exported}.*", []).append(entry)
        for alias in aliases(base, exported, stored.rpartition(".")[2].lower()):
            found.aliases.setdefault(alias, []).append(entry)
    return found


def aliases(base: str, exported: str, stored_ext: str) -> set[str]:
    """Other names (lowercased) a file may give an image of this base name. Uploads end every
    name with an extension of the image's format ('a.json' holding a PNG is stored as
    'a.json.png'; trailing dots and spaces are dropped), so a file naming the image as it was
    sent, 'a.json', means 'a.json.png'. Images stored before that keep their names ('a.json'),
    and exports write them as such a name ('a.json.png': selectors.export_parts)."""
    out = set()
    if exported != base:
        out |= {exported, f"{base.rpartition('.')[0] or base}.*"}
    stem, dot, ext = base.rpartition(".")
    if dot and stem and ext == stored_ext and not has_format_extension(stem, stored_ext):
        out |= {stem, f"{stem.rpartition('.')[0] or stem}.*"}  # 'a.json.png' was sent as 'a.json'
    return out - {base, f"{exported.rpartition('.')[0] or exported}.*"}


def entry_name(key: tuple) -> str:
    """A COCO image entry (file, id), or a file that is one image's entry (LabelMe, YOLO)."""
    return f"image {key[-1]}" if len(key) == 2 else f"'{key[0]}'"


def match_image(file_name: str, images, path: str = "") -> tuple[tuple | None, str | None]:
    # Exports name every image whose name (or, for LabelMe and YOLO, stem) is shared
    # '<stem>_<image id>.<ext>'. Such a name means image <id> whenever that image's own name is
    # '<stem>.<ext>' (YOLO: its stem is <stem>), before any image whose real name it is: an export
    # never writes a real name that reads so (selectors.suffix_lookalikes renames that image too).
    # Compared composed (NFC): a name uploaded from macOS ('é' as e + accent) and the same name in
    # a file written elsewhere look alike but were "not in this project".
    file_name, path = unicodedata.normalize("NFC", file_name), unicodedata.normalize("NFC", path)
    generated = generated_match(file_name, images)
    if generated is not None:
        return generated, None
    aliases = getattr(images, "aliases", {})
    keys = [file_name.lower()]
    if UPLOAD_PREFIX.match(file_name):
        keys.append(UPLOAD_PREFIX.sub("", file_name).lower())
    # The name itself first; only when no image has it, the names images answer to (aliases).
    candidates = next((images[k] for k in keys if images.get(k)), None) or next(
        (aliases[k] for k in keys if aliases.get(k)), None)
    if not candidates:
        looks = GENERATED_NAME.match(file_name)
        if looks and looks[2][0] != "0" and images.get(f"{looks[1]}.{looks[3]}".lower()):
            # Here several images have the name it stands for: it was generated in another project.
            return None, (f"image '{file_name}' (an export's name for one of several images called "
                          f"'{looks[1]}.{looks[3]}', by its id in the project exported) is not in this project")
        return None, f"image '{file_name}' is not in this project"
    if len(candidates) > 1:
        candidates = _named_by_path(candidates, images, (path or file_name).lower())
    if len(candidates) > 1:
        return None, f"image '{path or file_name}' is ambiguous: images {', '.join(str(c[0]) for c in candidates)} share that name"
    return candidates[0], None


def _named_by_path(candidates: list, images, given: str) -> list:
    """Of images sharing a base name, the one a name with folders means: the image stored under
    exactly that name, else the one whose folders it gives ('cams/a/IMG_1.jpg' of 'cams/a/IMG_1.jpg'
    and 'cams/b/IMG_1.jpg': folder uploads and zips keep their folders in the name). A bare name
    stays ambiguous, and an image stored without folders is matched by no folders: 'other.zip/a.png'
    went silently to 'a.png' beside 'batch.zip/a.png', whose exact name was "ambiguous" (round 18)."""
    if "/" not in given:
        return candidates
    paths = getattr(images, "paths", {})
    exact = [c for c in candidates if paths.get(c[0]) == given]
    named = exact or [c for c in candidates if "/" in paths.get(c[0], "") and same_path(paths[c[0]], given)]
    return named if len(named) == 1 else candidates


def same_path(stored: str, given: str) -> bool:
    """The file's path is the stored name, or its end at a folder boundary (a file written in a
    folder above the one uploaded: 'photos/cams/a/IMG_1.jpg' for 'cams/a/IMG_1.jpg', or below)."""
    return stored == given or stored.endswith("/" + given) or given.endswith("/" + stored)


GENERATED_NAME = re.compile(r"^(.+)_([0-9]{1,18})\.([^.]*)$", re.DOTALL)
GENERATED_ERROR = re.compile(r"^image '(.+)_([0-9]{1,18})\.([^.']*)' \(an export's name for one", re.DOTALL)


def generated_match(file_name: str, images) -> tuple | None:
    """The image a generated export name '<stem>_<id>.<ext>' stands for, or None."""
    found = GENERATED_NAME.match(file_name)
    if not found:
        return None
    head, image_id, ext = found.groups()
    key = f"{head}.{ext}".lower()
    for option in [*images.get(key, []), *getattr(images, "aliases", {}).get(key, [])]:
        if option[0] == int(image_id):
            return option
    return None
