"""Headless CLI: ``python -m ml annotate | tiny-models | models | bench``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from pathlib import Path

from ml.errors import missing_path
from ml.gallery import IMAGE_EXTS


class CLIError(SystemExit):
    """A usage, config or weights problem: one line on stderr and exit status 2 (argparse's own
    status for bad usage), no traceback. A SystemExit, so tests see the message in str()."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def read_rgb(path: Path):
    """The file's pixels as the workers decode an upload (ml.decode: 16-bit and float scaled, alpha
    composited), turned as its EXIF says (uploads are stored turned)."""
    from ml.decode import decode_rgb

    try:
        return decode_rgb(path.read_bytes(), exif_turn=True)
    except Exception as exc:  # Pillow's own words name what it could not read
        raise ValueError(f"not a readable image (empty, damaged or not an image file: {type(exc).__name__})") from None


def _ascii_int(v: str, fallback: int) -> int:
    # ASCII digits only: int() also takes '٣' and '３' (and '1_0').
    return int(v) if v.isascii() and v.strip().isdigit() else fallback


def _positive_int(v: str) -> int:
    n = _ascii_int(v, 0)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{v!r} must be a positive integer")
    return n


def _non_negative_int(v: str) -> int:
    n = _ascii_int(v, -1)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{v!r} must be 0 or a positive integer")
    return n


def _prompt(v: str) -> str:
    if not v.strip():  # reached the detector and ended in a traceback
        raise argparse.ArgumentTypeError("a prompt must not be blank")
    # As the API refuses them: "!!!" or "🔧" named nothing the detector could find (0 objects, exit 0).
    if not any(c.isalnum() for c in v):
        raise argparse.ArgumentTypeError(f"{v!r} has no letter or digit: name what to find, e.g. 'hammer'")
    if any(unicodedata.category(c) == "Cc" for c in v):
        raise argparse.ArgumentTypeError(f"{v!r} holds a control character")
    return v


SEED000_SIDE = (32, 16384)  # --seed000-size: each side, in pixels (16384 x 16384 RGB is 0.8 GB)


def _image_size(v: str) -> tuple[int, int]:
    """``WxH`` -> (h, w), each side within SEED000_SIDE: 0x0 was a cv2 traceback, 100000x100000
    tried to allocate 30 GB first."""
    lo, hi = SEED000_SIDE
    try:
        w, h = (int(x) for x in v.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r} must look like 4000x3000 (width x height)") from None
    if not (lo <= w <= hi and lo <= h <= hi):
        raise argparse.ArgumentTypeError(f"{v!r}: width and height must each be from {lo} to {hi} pixels")
    return h, w


def _image_files(folder: str, limit: int | None) -> list[Path]:
    root = Path(folder)
    if root.is_file() and root.suffix.lower() in IMAGE_EXTS:
        return [root]  # one image given by name
    if root.is_file():
        # 'x.gif' was told it is "a file, not a folder", as if one file could not be given.
        raise CLIError(f"--images: {folder!r} is not an image format this reads ({root.suffix or 'no extension'}); "
                       f"give one image or a folder of images ({', '.join(sorted(IMAGE_EXTS))})")
    if not root.is_dir():
        raise CLIError(f"--images: folder {folder!r} {missing_path(root, 'folder')}")
    entries = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    for p in entries:
        if p.is_symlink() and not p.exists():  # dropped in silence, where an empty file is warned of
            print(f"warning: skipped {p.name}: a link to {os.readlink(p)!r}, which does not exist", file=sys.stderr)
    files = [p for p in entries if p.is_file()]
    if not files:
        raise CLIError(f"--images: no images ({', '.join(sorted(IMAGE_EXTS))}) in {folder!r}")
    return files[:limit] if limit else files


def _out_stems(files: list[Path]) -> dict[str, str]:
    """File name -> stem for <stem>_ann.jpg and debug/<stem>/; the full name where two files share a stem."""
    stems = [f.stem for f in files]
    return {f.name: f.stem if stems.count(f.stem) == 1 else f.name for f in files}


def cmd_annotate(args) -> int:
    from tqdm import tqdm

    from ml import batching
    from ml.config import PipelineConfig
    from ml.formats import to_coco, to_native, write_timings
    from ml.gallery import Gallery
    from ml.pipeline import Pipeline

    files = _image_files(args.images, args.limit)
    out = Path(args.out)
    if out.exists() and not out.is_file():  # /dev/null: timings.csv beside it landed in /dev
        raise CLIError(f"--out: {args.out!r} {missing_path(out)}; give a .json file path")
    if out.is_symlink() and not out.exists() and not out.resolve().parent.is_dir():
        # Found only when the results were written, after the whole run: refused before it.
        raise CLIError(f"--out: {args.out!r} is a link to {os.readlink(out)!r}, whose folder does not exist")
    vis_dir = Path(args.vis_dir) if args.vis_dir else (out.parent if args.visualize else None)
    debug_dir = Path(args.debug) if args.debug else None
    for flag, folder in (("--vis-dir", vis_dir), ("--debug", debug_dir)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise CLIError(f"{flag}: {str(folder)!r} {missing_path(folder, 'folder')}")
    cfg = PipelineConfig.from_env(args.config)
    pipe = Pipeline.from_config(cfg)
    gallery = Gallery.from_dir(args.gallery, pipe, cfg.embedder.background) if args.gallery else None
    stems = _out_stems(files)
    # what the embedder resizes crops to (a projection-head checkpoint may override the config)
    input_size = getattr(getattr(pipe.embedder, "tensorize", None), "size", None) or cfg.embedder.input_size
    names, results, skipped = [], [], []
    # images handed to one annotate() call: enough to fill the largest image-stage batch
    chunk = max(batching.resolve(getattr(cfg, s).batch_size, s, pipe.device) for s in ("detector", "segmenter"))
    with tqdm(total=len(files), desc="annotate", unit="img", file=sys.stderr) as bar:
        for s in range(0, len(files), chunk):
            batch, ims = _read_batch(files[s:s + chunk], skipped, bar)
            res = _annotate_batch(pipe, batch, ims, gallery, args.prompt or None, skipped, bar)
            for f, im in zip(batch, ims):
                if f.name not in res:  # skipped: the models refused it
                    continue
                r = res[f.name]
                _write_extras(f.name, stems[f.name], im, r, vis_dir, debug_dir, cfg, input_size, gallery)
                for d in r.detections:
                    d.mask = None  # full-size masks of every image would pile up; the RLE keeps them exactly
                results.append(r)
                names.append(f.name)
            bar.update(len(files[s:s + chunk]))
    if not names:
        raise CLIError(f"none of the {len(files)} images could be read or annotated (warnings above)")
    out.parent.mkdir(parents=True, exist_ok=True)
    data = to_native(names, results) if args.format == "native" else to_coco(names, results)
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    write_timings(out.parent / "timings.csv", names, results)
    n_det = sum(len(r.detections) for r in results)
    print(f"wrote {out} ({args.format}, {len(names)} images, {n_det} detections) and {out.parent / 'timings.csv'}")
    if skipped:  # the run still succeeds: exit 0, the skipped files listed again at the end
        print(f"skipped {len(skipped)} file(s) (see the warnings above): {', '.join(skipped)}", file=sys.stderr)
    if vis_dir is not None:
        print(f"visualizations: {vis_dir}/<image>_ann.jpg")
    if debug_dir is not None:
        print(f"debug: {debug_dir}/<image>/ (crops, masks, similarities.json, exemplars/)")
    return 0


def _read_batch(files: list[Path], skipped: list[str], bar) -> tuple[list[Path], list]:
    """The files' pixels; an unreadable file (empty, junk, a link to a text file) is skipped with a
    one-line warning instead of ending the run after every other image was computed."""
    batch, ims = [], []
    for f in files:
        try:
            ims.append(read_rgb(f))
            batch.append(f)
        except (OSError, ValueError) as exc:
            bar.write(f"warning: skipped {f.name}: {exc}", file=sys.stderr)
            skipped.append(f.name)
    return batch, ims


def _annotate_batch(pipe, batch, ims, gallery, prompts, skipped, bar) -> dict:
    """{file name: result}. An image the models refuse (1 x 1 px: ImageInputError) fails its whole
    batch: then each image alone, and only the refused one is skipped."""
    from ml.inputs import ImageInputError

    def run(fs, images) -> dict:
        return dict(zip([f.name for f in fs], pipe.annotate(images, gallery, prompts)))

    try:
        return run(batch, ims) if batch else {}
    except ImageInputError as exc:
        if len(batch) == 1:
            bar.write(f"warning: skipped {batch[0].name}: {exc}", file=sys.stderr)
            skipped.append(batch[0].name)
            return {}
    out = {}
    for f, im in zip(batch, ims):
        out.update(_annotate_batch(pipe, [f], [im], gallery, prompts, skipped, bar))
    return out


def _write_extras(name, stem, image, result, vis_dir, debug_dir, cfg, input_size, gallery) -> None:
    if vis_dir is not None:
        from ml.visualize import save_visualization

        classes = gallery.classes if gallery is not None else list(cfg.embedder.class_names)
        save_visualization(vis_dir / f"{stem}_ann.jpg", image, result.detections, classes)
    if debug_dir is not None:
        from ml.debug_dump import dump_image

        dump_image(debug_dir / stem, name, image, result.detections, cfg.embedder, input_size, gallery, cfg.matcher)


def cmd_tiny(args) -> int:
    from ml.tiny import TINY_WARNING, build_tiny_models

    if Path(args.out).exists() and not Path(args.out).is_dir():  # said only "File exists"
        raise CLIError(f"--out: {args.out!r} {missing_path(args.out, 'folder')}")
    cfg = build_tiny_models(args.out)
    print(f"WARNING: {TINY_WARNING}")
    print(f"config: {cfg}  (variants: config_head.json, config_onnx.json)")
    print(f"use: python -m ml annotate --config {cfg} --images DIR --gallery DIR --out predictions.json")
    return 0


def cmd_models(args) -> int:
    from ml.models_hub import run

    return run(args.out, args.engine)


def cmd_engines(args) -> int:
    from ml.engines import describe

    rows = describe()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        hub = ", ".join(r["hub_ids"]) or "none (train one: issue 15)"
        print(f"{r['name']}: {r['title']}\n  needs: {r['weights']}\n  hub ids: {hub}"
              f"{'  (GATED: accept the licence on the hub, then HF_TOKEN)' if r['gated'] else ''}\n"
              f"  text prompts: {'yes' if r['text_prompts'] else 'no (closed set)'}; boxes given: "
              f"{r['boxes_given']}; trainable here: {'yes' if r['trainable'] else 'no'}; "
              f"config section: {r['config_section']}")
    return 0


def cmd_bench(args) -> int:
    from ml.bench import run_bench

    return run_bench(device=args.device, quick=args.quick, config=args.config, n_images=args.images,
                     calibrate_sizes=args.calibrate, seed000_images=args.seed000_images,
                     seed000_size=args.seed000_size,
                     repeats=args.repeats)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml", description="Razmetka pre-annotation engine")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("annotate", help="detect, segment, embed and match a folder of images")
    a.add_argument("--images", required=True, help="folder of images (or one image file)")
    a.add_argument("--gallery", help="exemplar folder: flat (class = file stem) or one sub-folder per class")
    a.add_argument("--out", required=True, help="output json; timings.csv is written next to it")
    a.add_argument("--format", choices=["native", "coco"], default="native")
    a.add_argument("--config", help="config json/yaml (default: env RAZMETKA_ML_CONFIG, else built-in)")
    a.add_argument("--prompt", action="append", type=_prompt, help="detector text prompt (repeatable; default from config)")
    a.add_argument("--limit", type=_positive_int, help="annotate only the first N images (sorted by name)")
    a.add_argument("--visualize", action="store_true",
                   help="write <image>_ann.jpg (masks, boxes, class and score) next to --out")
    a.add_argument("--vis-dir", help="folder for the _ann.jpg visualizations (implies --visualize)")
    a.add_argument("--debug", metavar="DIR",
                   help="per image: the embedder's crops, masks, similarities.json and the matched exemplars")
    a.set_defaults(func=cmd_annotate)
    t = sub.add_parser("tiny-models", help="write tiny random-weight models + a config (meaningless output)")
    t.add_argument("--out", required=True)
    t.set_defaults(func=cmd_tiny)
    m = sub.add_parser("models", help="download the real weights from the hub and write a config (make models)")
    m.add_argument("--out", default="var/models", help="folder for the weights and config.json (default var/models)")
    m.add_argument("--engine", choices=["gdino-sam2", "sam3"], default="gdino-sam2",
                   help="sam3 also downloads SAM 3 (gated: needs an accepted licence and HF_TOKEN)")
    m.set_defaults(func=cmd_models)
    e = sub.add_parser("engines", help="list the engines (set `engine` in the config) and what each needs")
    e.add_argument("--json", action="store_true", help="machine-readable")
    e.set_defaults(func=cmd_engines)
    b = sub.add_parser("bench", help="reference vs batched path: agreement and speed")
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    b.add_argument("--quick", action="store_true", help="smaller models/images to fit a few minutes on CPU")
    b.add_argument("--config", help="use these (real) models instead of random full-size defaults")
    b.add_argument("--images", type=_positive_int, default=None,
                   help="number of synthetic images (default 2 with --quick, else 8)")
    b.add_argument("--calibrate", action="store_true",
                   help="time a few batch sizes per stage on this device, use the fastest and write them "
                        "into --config")
    b.add_argument("--seed000-images", type=_non_negative_int, default=2,
                   help="images for the seed-000 comparison (0 = skip it)")
    b.add_argument("--repeats", type=_positive_int, default=2,
                   help="reference and batched runs, interleaved; the best of each is reported")
    b.add_argument("--seed000-size", type=_image_size, default="4000x3000",
                   help=f"WxH of the seed-000 comparison's images, each side {SEED000_SIDE[0]} to "
                        f"{SEED000_SIDE[1]} (default 4000x3000)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    from ml.errors import MLError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise
    except MLError as exc:  # a config value, missing weights, a device this build lacks: named in the message
        message = str(exc)
    except OSError as exc:  # --out in a folder that cannot be written, a config that cannot be read
        message = f"{exc.strerror or exc}: {exc.filename!r}" if exc.filename else str(exc)
    print(f"error: {message}", file=sys.stderr)
    raise CLIError(message) from None
