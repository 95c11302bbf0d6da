"""The review page's ?display=1 of a file browsers cannot draw (a TIFF): the first request makes
and stores the PNG, later ones stream the stored file.

Run: .venv/bin/python tests/benchmarks/rendition_bench.py [--height 2000 --width 3000] [--repeats 5]
Uses the embedded servers and a scratch project (deleted afterwards); prints the first request's
time and the median of the repeats.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--width", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from PIL import Image as PILImage

    from backend.images.services import upload_images
    from backend.projects.services import create_project

    user = get_user_model().objects.create_user(f"rendition-bench-{time.time_ns()}")
    project = create_project(user=user, name="rendition-bench")
    try:
        pixels = np.random.default_rng(0).integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
        buf = io.BytesIO()
        PILImage.fromarray(pixels).save(buf, "TIFF")
        image = upload_images(project=project, user=user, files=[SimpleUploadedFile("scan.tiff", buf.getvalue())]).created[0]
        client = Client()
        client.force_login(user)
        url = f"/api/projects/{project.pk}/images/{image.pk}/file/?display=1"
        times = []
        for _ in range(args.repeats + 1):
            t0 = time.perf_counter()
            response = client.get(url)
            size = len(b"".join(response.streaming_content)) if response.streaming else len(response.content)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.status_code
        print(f"tiff {args.width}x{args.height} ({len(buf.getvalue()) / 2**20:.1f} MiB), png {size / 2**20:.1f} MiB")
        print(f"first request {times[0] * 1000:.0f} ms; then median {statistics.median(times[1:]) * 1000:.1f} ms "
              f"over {args.repeats}")
    finally:
        from django.db import transaction

        from backend.projects.services import delete_project

        with transaction.atomic():  # its files go after the commit, as a user's deletion
            delete_project(project_id=project.pk, version=project.version)
        user.delete()


if __name__ == "__main__":
    main()
