"""One module per format; this maps a format name to its export writer and import parser."""
from __future__ import annotations

from .base import Parser, Writer


def writer_for(fmt: str) -> Writer:
    from . import coco, labelme, labelstudio, native, yolo

    return {
        "coco": coco.CocoWriter,
        "labelme": labelme.LabelmeWriter,
        "yolo": yolo.YoloWriter,
        "native": native.NativeWriter,
        "labelstudio": labelstudio.LabelStudioWriter,
    }[fmt]()


def parser_for(fmt: str) -> Parser:
    from . import coco, labelme, labelstudio, native, yolo

    return {
        "coco": coco.CocoParser,
        "labelme": labelme.LabelmeParser,
        "yolo": yolo.YoloParser,
        "native": native.NativeParser,
        "labelstudio": labelstudio.LabelStudioParser,
    }[fmt]()
