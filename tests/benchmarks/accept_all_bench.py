"""Accept-all on one image: the reviewer's "accept everything" key, 50 model objects whose
crop embeddings are 1024 floats (as DINOv3's are), in a transaction rolled back after each run.

    .venv/bin/python tests/benchmarks/accept_all_bench.py [--objects 50 --dim 1024 --runs 7]

Runs on the dev database (the embedded server under var/, or DATABASE_URL) in a scratch project
removed afterwards. Prints the median and each run in ms (the first run warms caches).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from backend.annotations import services
    from backend.annotations.models import Annotation, Source
    from backend.core.bulk_sql import copy_insert
    from backend.images.models import Image
    from backend.projects.models import LabelClass
    from backend.projects.services import create_project

    user = get_user_model().objects.create_user(f"accept-all-bench-{time.time_ns()}")
    project = create_project(user=user, name="accept-all bench")
    try:
        label = LabelClass.objects.create(project=project, name="hammer")
        image = Image.objects.create(project=project, file="bench.jpg", original_name="bench.jpg", content_type="image/jpeg",
                                     sha256="0" * 64, size_bytes=1, width=640, height=480, uploaded_by=user)
        rng = np.random.default_rng(0)
        copy_insert(Annotation, [
            Annotation(project=project, image=image, label_class=label, mask_rle={"size": [480, 640], "counts": "PPYo08"},
                       bbox=[1.0, 1.0, 5.0, 5.0], area=25, source=Source.MODEL, embedder_version="bench",
                       embedding=rng.standard_normal(args.dim).astype(np.float32))
            for _ in range(args.objects)
        ])
        times = []
        for _ in range(args.runs):
            with transaction.atomic():
                start = time.perf_counter()
                services.accept_all(project=project, image_id=image.pk, user=user)
                times.append((time.perf_counter() - start) * 1000)
                transaction.set_rollback(True)
    finally:
        Annotation.objects.filter(project=project).delete()
        project.delete()
        user.delete()
    print(f"accept-all, {args.objects} objects with {args.dim}-float embeddings: median {statistics.median(times):.1f} ms "
          f"(runs {', '.join(f'{t:.0f}' for t in times)})")


if __name__ == "__main__":
    main()
