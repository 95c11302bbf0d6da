"""COCO export benchmark: N images x M objects in a scratch project, time and peak memory.

    .venv/bin/python tests/benchmarks/export_bench.py [--images N --objects M --segmentation rle|polygon]

Rows are bulk-created (image files are not written: the export does not read them unless
include_images). The export service runs in this process; a sampler thread records the peak
RSS while it runs. The scratch rows are rolled back and the export file is removed afterwards.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--segmentation", choices=["rle", "polygon"], default="rle")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--profile", action="store_true", help="cProfile the export and print the top functions")
    args = parser.parse_args()

    import django

    django.setup()
    import cv2
    import numpy as np
    import psutil
    from django.contrib.auth import get_user_model

    from backend.annotations.models import Annotation
    from backend.core.masks import mask_geometry
    from backend.exchange import geometry, services
    from backend.exchange.models import ExportJob
    from backend.images.models import Image
    from backend.projects.models import LabelClass, Project

    w, h = args.width, args.height
    rng = np.random.default_rng(0)
    shapes = []  # 50 distinct tool-like masks (rotated ellipses with a hole now and then)
    for k in range(50):
        mask = np.zeros((h, w), np.uint8)
        cx, cy = int(rng.integers(100, w - 100)), int(rng.integers(100, h - 100))
        cv2.ellipse(mask, (cx, cy), (int(rng.integers(20, 90)), int(rng.integers(8, 40))), float(rng.integers(0, 180)), 0, 360, 1, -1)
        if k % 5 == 0:
            cv2.circle(mask, (cx, cy), 4, 0, -1)
        rle = geometry.encode(mask)
        bbox, area = mask_geometry(rle)
        shapes.append((rle, bbox, area))

    from django.db import transaction

    # Everything happens in one transaction that is rolled back: no scratch rows outlive the run,
    # even when it fails half-way (the export reads the rows through the same connection).
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username="export-bench")
        project = Project.objects.create(name=f"export-bench-{os.getpid()}", created_by=user)
        classes = LabelClass.objects.bulk_create(LabelClass(project=project, name=f"tool-{i}") for i in range(20))
        t0 = time.perf_counter()
        for start in range(0, args.images, 1000):
            batch = Image.objects.bulk_create(
                Image(project=project, file=f"bench/{i}.jpg", original_name=f"bench_{i:06d}.jpg", content_type="image/jpeg",
                      sha256=f"{project.pk}-{i}", size_bytes=1, width=w, height=h)
                for i in range(start, min(start + 1000, args.images))
            )
            rows = []
            for img in batch:
                for j in range(args.objects):
                    rle, bbox, area = shapes[(img.pk + j) % len(shapes)]
                    rows.append(Annotation(project=project, image=img, label_class=classes[j % len(classes)], mask_rle=rle,
                                           bbox=bbox, area=area, source="human", class_review="accepted", mask_review="accepted"))
            Annotation.objects.bulk_create(rows, batch_size=5000)
        # Statistics of the uncommitted rows (ANALYZE counts this transaction's own): without them
        # the planner takes the tables for empty and the export's EXISTS turns quadratic.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Image._meta.db_table}, {Annotation._meta.db_table}")
        print(f"setup: {args.images} images x {args.objects} objects in {time.perf_counter() - t0:.1f} s")

        job = ExportJob.objects.create(project=project, created_by=user, format="coco",
                                       options={"segmentation": args.segmentation}, status="running")
        proc = psutil.Process()
        base_rss = proc.memory_info().rss
        peak = [base_rss]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        path = os.path.join(str(__import__("django.conf").conf.settings.MEDIA_ROOT), f"exports/bench-{os.getpid()}.zip")
        t0, cpu0 = time.perf_counter(), time.process_time()
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            result = profiler.runcall(services.write_export, job=job, path=path)
        else:
            result = services.write_export(job=job, path=path)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        done.set()
        sampler.join()
        size = os.path.getsize(path)
        os.remove(path)
        print(f"export ({args.segmentation}): {result['images']} images, {result['annotations']} annotations "
              f"in {seconds:.1f} s; zip {size / 1e6:.1f} MB")
        if result["annotations"]:
            # CPU seconds of this process (not PostgreSQL's): on shared cores wall time mostly says how busy they were.
            print(f"throughput: {result['annotations'] / seconds:.0f} objects/s wall, "
                  f"{result['annotations'] / cpu:.0f} objects per CPU second ({cpu:.1f} s CPU); load {os.getloadavg()[0]:.1f}")
        if args.profile:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        print(f"RSS: {base_rss / 2**20:.0f} MiB before, peak {peak[0] / 2**20:.0f} MiB during the export "
              f"(+{(peak[0] - base_rss) / 2**20:.0f} MiB); process max RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
