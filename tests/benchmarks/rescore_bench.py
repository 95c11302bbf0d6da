"""Re-scoring benchmark: a gallery change re-matches every unreviewed model object's stored
embedding (no model pass) and writes the changed ones with their "rescored" events.

    .venv/bin/python tests/benchmarks/rescore_bench.py [--images 200 --per-image 50 --dim 1024 --keep]

Runs on the embedded Postgres, in a database of its own (`razmetka_rescore_bench`, created and
migrated here, dropped afterwards unless --keep). Image rows, objects (random unit vectors of
--dim floats, no candidates yet) and a gallery of 3 classes x --exemplars (5) with vectors are
written directly; then `rescore_project` runs in this process, as the cpu worker runs it, twice:
the first pass changes every object, the second (same gallery) changes none and measures the
read and match alone. Prints seconds, objects per second and changed counts.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--per-image", type=int, default=50)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--exemplars", type=int, default=5, help="per class (3 classes)")
    parser.add_argument("--db", default="razmetka_rescore_bench")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    from tests.benchmarks.import_bench import drop_database, open_bench_database

    open_bench_database(args.db)
    import numpy as np
    from django.contrib.auth import get_user_model

    from backend.annotations.models import Annotation, Source
    from backend.core.bulk_sql import copy_insert
    from backend.gallery.models import GalleryEmbedding, GalleryImage
    from backend.images.models import Image
    from backend.jobs.rescoring import rescore_project
    from backend.projects.models import LabelClass
    from backend.projects.services import create_project

    version = "bench|dinov3"
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, args.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    user, _ = get_user_model().objects.get_or_create(username="rescore-bench")
    project = create_project(user=user, name=f"rescore bench {time.time_ns()}")
    t0 = time.perf_counter()
    classes = [LabelClass.objects.create(project=project, name=name) for name in ("hammer", "wrench", "pliers")]
    for label in classes:
        for k in range(args.exemplars):
            exemplar = GalleryImage.objects.create(
                project=project, label_class=label, file=f"bench/{label.name}-{k}.png", original_name=f"{k}.png",
                content_type="image/png", sha256=f"{label.pk:032d}{k:032d}", width=64, height=64,
            )
            GalleryEmbedding.objects.create(gallery_image=exemplar, embedder_version=version, vector=unit(1)[0].tolist())
    images = Image.objects.bulk_create([
        Image(project=project, file=f"bench/{i}.jpg", original_name=f"{i}.jpg", content_type="image/jpeg",
              sha256=f"{project.pk:016d}{i:048d}", size_bytes=1, width=640, height=480, uploaded_by=user)
        for i in range(args.images)
    ])
    rle = {"size": [480, 640], "counts": "PPYo08"}
    for image in images:
        vectors = unit(args.per_image)
        copy_insert(Annotation, [
            Annotation(project=project, image=image, label_class=classes[k % 3], mask_rle=rle, bbox=[1.0, 1.0, 10.0, 10.0],
                       area=100, source=Source.MODEL, det_score=0.9, mask_score=0.9, class_score=0.5, candidates=[],
                       embedding=vectors[k], embedder_version=version)
            for k in range(args.per_image)
        ])
    total = args.images * args.per_image
    print(f"setup: {total} objects ({args.dim} floats each) on {args.images} images, "
          f"gallery 3 classes x {args.exemplars} exemplars, in {time.perf_counter() - t0:.1f} s")
    import ml.gallery  # noqa: F401  (torch, scipy: imported once when a worker starts, not per re-scoring)
    import ml.matcher  # noqa: F401

    from backend.jobs.gallery_index import load_gallery

    took = []
    for _ in range(3):
        t0 = time.perf_counter()
        load_gallery(project_id=project.pk, embedder_version=version)
        took.append((time.perf_counter() - t0) * 1000)
    print(f"load_gallery ({3 * args.exemplars} exemplars), as each job and re-scoring pass starts: "
          f"median {sorted(took)[1]:.1f} ms")
    try:
        for label in ("first pass (every object changes)", "second pass (nothing changes)"):
            t0 = time.perf_counter()
            changed = rescore_project(project_id=project.pk)
            took = time.perf_counter() - t0
            print(f"{label}: {changed} changed in {took:.2f} s = {total / took:,.0f} objects/s")
    finally:
        if not args.keep:
            drop_database(args.db)


if __name__ == "__main__":
    main()
