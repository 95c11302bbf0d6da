"""Review API under load: N concurrent reviewers read and update one 12 MP image with 50 objects.

Run: .venv/bin/python tests/benchmarks/api_bench.py [--clients 50] [--seconds 60] [--web-processes N]
Starts its own ASGI servers the way `manage.py serve` does (N daphne processes accepting on one
socket; default as serve chooses) on a free loopback port over the embedded servers, works in a
scratch project and deletes it afterwards. Prints requests/s, p50/p95 latency per kind and the
error count. The load generator runs on the same machine and takes CPU from the servers.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def seed(clients: int, objects: int):
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image as PILImage
    from pycocotools import mask as mask_utils
    from rest_framework.authtoken.models import Token

    from backend.annotations.models import Annotation
    from backend.images.services import upload_images
    from backend.projects.models import LabelClass, Membership
    from backend.projects.services import create_project

    import io

    User = get_user_model()
    stamp = int(time.time())
    owner = User.objects.create_user(f"bench-owner-{stamp}")
    project = create_project(user=owner, name=f"api-bench-{stamp}")
    classes = [LabelClass.objects.create(project=project, name=f"class{i}") for i in range(10)]
    width, height = 4000, 3000
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (height // 10, width // 10, 3), dtype=np.uint8)).resize((width, height)).save(buf, "JPEG", quality=80)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("big.jpg", buf.getvalue())]).created[0]
    rows = []
    for i in range(objects):
        mask = np.zeros((height, width), np.uint8)
        cx, cy = rng.integers(200, width - 200), rng.integers(200, height - 200)
        yy, xx = np.ogrid[:height, :width]
        mask[(xx - cx) ** 2 / 150**2 + (yy - cy) ** 2 / 60**2 <= 1] = 1
        rle = mask_utils.encode(np.asfortranarray(mask))
        x, y, w, h = mask_utils.toBbox(rle).tolist()
        rows.append(Annotation(
            project=project, image=image, label_class=classes[i % 10], source="model", area=int(mask_utils.area(rle)),
            mask_rle={"size": [height, width], "counts": rle["counts"].decode()}, bbox=[x, y, w, h], class_score=0.8,
            candidates=[{"class_id": c.pk, "name": c.name, "score": 0.5, "exemplar_id": None} for c in classes[:5]],
        ))
    annotations = Annotation.objects.bulk_create(rows)
    tokens = []
    for i in range(clients):
        user = User.objects.create_user(f"bench-{stamp}-{i}")
        Membership.objects.create(project=project, user=user, role="reviewer")
        tokens.append(Token.objects.create(user=user).key)
    return project, image, [a.pk for a in annotations], tokens, owner


def cleanup(project, owner):
    from django.contrib.auth import get_user_model

    from backend.annotations.models import Annotation
    from backend.projects.models import Membership

    user_ids = list(Membership.objects.filter(project=project).values_list("user_id", flat=True))
    Annotation.objects.filter(project=project).delete()
    project.delete()
    get_user_model().objects.filter(pk__in=user_ids + [owner.pk]).delete()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def reviewer(client, base, token, image_id, annotation_id, deadline, samples, errors):
    import httpx

    headers = {"Authorization": f"Token {token}"}
    version = 1
    decision = "accepted"
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            r = await client.get(f"{base}/images/{image_id}/", headers=headers)
            samples["read"].append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(r.status_code)
            t0 = time.perf_counter()
            r = await client.post(f"{base}/annotations/{annotation_id}/review/", headers=headers,
                                  json={"version": version, "target": "class", "decision": decision})
            samples["write"].append(time.perf_counter() - t0)
            if r.status_code == 200:
                version = r.json()["version"]
                decision = "rejected" if decision == "accepted" else "accepted"
            else:
                errors.append(r.status_code)
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def run_load(port, project_id, image_id, annotation_ids, tokens, seconds):
    import httpx

    base = f"http://127.0.0.1:{port}/api/projects/{project_id}"
    samples = {"read": [], "write": []}
    errors: list = []
    limits = httpx.Limits(max_connections=len(tokens) + 5)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*[
            reviewer(client, base, token, image_id, annotation_ids[i % len(annotation_ids)], deadline, samples, errors)
            for i, token in enumerate(tokens)
        ])
    return samples, errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--web-processes", type=int, default=0, help="0: what manage.py serve chooses")
    args = parser.parse_args()
    project, image, annotation_ids, tokens, owner = seed(args.clients, args.objects)
    from backend.core.management.commands.serve import default_web_processes, listen

    processes = args.web_processes or default_web_processes()
    port = free_port()
    sock = listen("127.0.0.1", port)
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), "backend.config.asgi:application"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(sock.fileno(),),
        )
        for _ in range(processes)
    ]
    try:
        time.sleep(3)  # let every process import Django before the load starts
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        samples, errors = asyncio.run(run_load(port, project.pk, image.pk, annotation_ids, tokens, args.seconds))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)
        sock.close()
        cleanup(project, owner)
    total = len(samples["read"]) + len(samples["write"])
    print(f"clients={args.clients} objects={args.objects} seconds={args.seconds:.0f} image=4000x3000 "
          f"web_processes={processes} cores={os.cpu_count()}")
    for kind in ("read", "write"):
        values = samples[kind]
        print(f"{kind:5s}: n={len(values)} p50={pct(values, .5):.1f}ms p95={pct(values, .95):.1f}ms "
              f"mean={statistics.fmean(values) * 1000 if values else float('nan'):.1f}ms")
    print(f"requests_per_s={total / args.seconds:.1f} errors={len(errors)} {sorted(set(map(str, errors)))[:5]}")


if __name__ == "__main__":
    main()
