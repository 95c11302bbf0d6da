"""An import onto an image already crowded with like objects: the "already there" check's cost.

`python tests/benchmarks/import_crowd_bench.py [--objects 1000] [--layout grid|same-box]`: one
2000x2000 image gets N objects by a first COCO import, then N more by a second, and the second's
time is printed with how many it found already there.
- grid: 1000x1000 boxes on an 8x8 grid of 120 px steps, the second file shifted by 60 px (the
  black-box report's file: every box meets every other, none is a twin);
- same-box: triangles that all share one bounding box, the second file's slightly turned (every
  pair passes the box test, so the mask comparisons per row are what is capped).
Runs in a database of its own (razmetka_crowd_bench, dropped afterwards), in-process as the cpu
worker runs imports.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.import_bench import drop_database, open_bench_database  # noqa: E402


def coco(n: int, layout: str, shift: int) -> bytes:
    if layout == "grid":
        anns = [{"id": i + 1, "image_id": 1, "category_id": 1,
                 "bbox": [(i % 8) * 120 + shift, ((i // 8) % 8) * 120 + shift, 1000, 1000]} for i in range(n)]
    else:
        anns = [{"id": i + 1, "image_id": 1, "category_id": 1,
                 "segmentation": [[10, 10, 1010, 10, 10 + (i * 7 + shift) % 1000, 1010]]} for i in range(n)]
    return json.dumps({"images": [{"id": 1, "file_name": "big.png", "width": 2000, "height": 2000}],
                       "categories": [{"id": 1, "name": "tool"}], "annotations": anns}).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--layout", choices=["grid", "same-box"], default="grid")
    parser.add_argument("--db", default="razmetka_crowd_bench")
    args = parser.parse_args()
    open_bench_database(args.db)
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.exchange import services
    from backend.images.services import upload_images
    from tests.backend.factories import image_bytes, make_class, make_project, make_user

    try:
        user = make_user("crowd-bench")
        project = make_project(user, name="crowd-bench")
        make_class(project, "tool")
        upload_images(project=project, user=user, files=[SimpleUploadedFile("big.png", image_bytes(2000, 2000))])

        def run(data: bytes):
            job = services.start_import(project=project, user=user, format="coco", upload=SimpleUploadedFile("c.json", data),
                                        as_accepted=False, create_missing_classes=False)
            t0 = time.perf_counter()
            job = services.run_import(job_id=job.pk)
            return job, time.perf_counter() - t0

        job, first = run(coco(args.objects, args.layout, 0))
        print(f"{args.layout}: {job.result['annotations']} objects onto an empty image in {first:.1f} s")
        job, second = run(coco(args.objects, args.layout, 3 if args.layout == "same-box" else 60))
        print(f"{args.layout}: {args.objects} more onto those {args.objects}: {job.result['annotations']} added, "
              f"{job.result['already_present']} already there, in {second:.1f} s")
    finally:
        drop_database(args.db)


if __name__ == "__main__":
    main()
