"""COCO import benchmark: a file of N annotations into a project of matching images; wall time
per pass and peak RSS.

    .venv/bin/python tests/benchmarks/import_bench.py [--annotations 1000000 --per-image 50
                                                       --width 640 --height 480 --keep]

Runs on the embedded Postgres, in a database of its own (`razmetka_import_bench`, created and
migrated here, dropped afterwards unless --keep). Image rows are bulk-created (no files: an
import reads none); the COCO file is written straight to the media root, half the masks as
compressed RLE and half as polygons, tool-like ellipses. The import service runs in this
process, as the cpu worker runs it; a sampler thread records RSS while it runs. Goal: 1M
annotations with a peak RSS < 1 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def ensure_database(name: str) -> None:
    import psycopg
    from django.conf import settings

    conn = settings.DATABASES["default"]
    params = {"dbname": "postgres", "user": conn["USER"], "password": conn["PASSWORD"] or None,
              "host": conn["HOST"] or None, "port": conn["PORT"] or None}
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def open_bench_database(name: str) -> None:
    """Point Django at a database of the bench's own (created and migrated here); drop_database
    removes it afterwards."""
    os.environ["RAZMETKA_DB_NAME"] = name
    import django

    django.setup()
    ensure_database(name)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop_database(name: str) -> None:
    import psycopg
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    conn = settings.DATABASES["default"]
    params = {"dbname": "postgres", "user": conn["USER"], "password": conn["PASSWORD"] or None,
              "host": conn["HOST"] or None, "port": conn["PORT"] or None}
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def masks(width: int, height: int, count: int = 50) -> list:
    """`count` distinct segmentations: compressed RLE and COCO polygons of rotated ellipses."""
    import cv2
    import numpy as np
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    out = []
    for k in range(count):
        center = (int(rng.integers(60, width - 60)), int(rng.integers(60, height - 60)))
        axes = (int(rng.integers(12, 50)), int(rng.integers(5, 25)))
        angle = int(rng.integers(0, 180))
        if k % 2 == 0:
            mask = np.zeros((height, width), np.uint8)
            cv2.ellipse(mask, center, axes, angle, 0, 360, 1, -1)
            rle = mask_utils.encode(np.asfortranarray(mask))
            out.append({"size": [height, width], "counts": rle["counts"].decode("ascii")})
        else:
            points = cv2.ellipse2Poly(center, axes, angle, 0, 360, 20)
            out.append([[float(v) for v in points.reshape(-1)]])
    return out


def write_coco(path: str, n: int, per_image: int, width: int, height: int) -> int:
    shapes = masks(width, height)
    images = (n + per_image - 1) // per_image
    with open(path, "w") as fh:
        fh.write('{"info":{"description":"import bench"},"licenses":[],"categories":'
                 '[{"id":1,"name":"hammer"},{"id":2,"name":"wrench"},{"id":3,"name":"pliers"}],"images":[')
        fh.write(",".join(json.dumps({"id": i + 1, "file_name": f"bench_{i:07d}.jpg", "width": width, "height": height})
                          for i in range(images)))
        fh.write('],"annotations":[')
        for a in range(n):
            if a:
                fh.write(",")
            fh.write(json.dumps({"id": a + 1, "image_id": a // per_image + 1, "category_id": 1 + a % 3,
                                 "segmentation": shapes[a % len(shapes)], "iscrowd": 0, "score": 0.9}))
        fh.write("]}\n")
    return images


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--per-image", type=int, default=50)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--db", default="razmetka_import_bench")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--twice", action="store_true",
                        help="import the same file again: every object is already there (skipped, none added)")
    args = parser.parse_args()
    open_bench_database(args.db)
    import psutil
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from backend.annotations.models import Annotation, AnnotationEvent
    from backend.exchange import services
    from backend.exchange.importing import apply_import
    from backend.exchange.models import ImportJob
    from backend.images.models import Image
    from backend.projects.models import LabelClass, Project

    try:
        user, _ = get_user_model().objects.get_or_create(username="import-bench")
        project = Project.objects.create(name=f"import-bench-{os.getpid()}", created_by=user)
        LabelClass.objects.bulk_create(LabelClass(project=project, name=n) for n in ("hammer", "wrench", "pliers"))
        name = f"imports/{project.pk}/bench-{os.getpid()}.json"
        path = os.path.join(settings.MEDIA_ROOT, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        t0 = time.perf_counter()
        images = write_coco(path, args.annotations, args.per_image, args.width, args.height)
        for start in range(0, images, 5000):
            Image.objects.bulk_create(
                Image(project=project, file=f"bench/{i}.jpg", original_name=f"bench_{i:07d}.jpg", content_type="image/jpeg",
                      sha256=f"{project.pk}-{i}", size_bytes=1, width=args.width, height=args.height)
                for i in range(start, min(start + 5000, images))
            )
        print(f"setup: {args.annotations} annotations on {images} images ({args.width}x{args.height}), "
              f"COCO file {os.path.getsize(path) / 1e6:.0f} MB, in {time.perf_counter() - t0:.1f} s")

        job = ImportJob.objects.create(project=project, created_by=user, format="coco", upload_file=name,
                                       upload_name="instances.json", status="running")
        job = ImportJob.objects.select_related("project", "created_by").get(pk=job.pk)
        proc = psutil.Process()
        base_rss = proc.memory_info().rss
        peak = [base_rss]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                time.sleep(0.05)

        reporter = services.ImportProgress(job)
        marks: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            marks.setdefault(stage, time.perf_counter())
            reporter(stage, done, total)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        try:
            errors, result = apply_import(job=job, progress=progress)
        finally:
            reporter.close()
            stop.set()
            sampler.join()
        seconds = time.perf_counter() - t0
        assert not errors, errors[:5]
        created = Annotation.objects.filter(project=project).count()
        audited = AnnotationEvent.objects.filter(project=project).count()
        assert created == audited == args.annotations, (created, audited)
        checking = marks.get("writing", t0 + seconds) - marks["checking"]
        print(f"import: {result['annotations']} annotations + {audited} audit events on {result['images']} images "
              f"in {seconds:.1f} s (pass 1, checking: {checking:.1f} s; pass 2, writing: {seconds - checking:.1f} s)")
        print(f"RSS: {base_rss / 2**20:.0f} MiB before, peak {peak[0] / 2**20:.0f} MiB during the import "
              f"(+{(peak[0] - base_rss) / 2**20:.0f} MiB); process max RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        if args.twice:
            again = ImportJob.objects.create(project=project, created_by=user, format="coco", upload_file=name,
                                             upload_name="instances.json", status="running")
            t1 = time.perf_counter()
            errors, result = apply_import(job=again, progress=lambda *_: None)
            assert not errors and Annotation.objects.filter(project=project).count() == args.annotations, errors[:5]
            print(f"again: {result['annotations']} added, {result['already_present']} already there, "
                  f"in {time.perf_counter() - t1:.1f} s")
        os.remove(path)
    finally:
        if not args.keep:
            drop_database(args.db)


if __name__ == "__main__":
    main()
