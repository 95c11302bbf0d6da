"""Pipeline directly vs the same images through a pre-annotation job on a real Celery worker.

Run: .venv/bin/python tests/benchmarks/jobs_bench.py [--images 8] [--repeats 3] [--photos] [--config var/tiny-models/config.json]
Uses the embedded servers, a scratch project (deleted afterwards) and its own worker process on
private queues. Prints images/s both ways and the overhead ratio (job time / direct time).
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--config", default=str(ROOT / "var" / "tiny-models" / "config.json"))
    parser.add_argument("--batch", type=int, default=None, help="PRELABEL_BATCH_SIZE (default: the setting's)")
    parser.add_argument("--chunk", type=int, default=None, help="PRELABEL_CHUNK_SIZE (default: the setting's)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="direct run and job alternate this many times; medians are printed (this host's speed swings)")
    parser.add_argument("--write-every", type=float, default=None, help="PRELABEL_WRITE_EVERY_S (default: the setting's)")
    parser.add_argument("--photos", action="store_true",
                        help="4000x3000 JPEGs with grain (~4 MB, as a phone's) instead of 320x240 PNGs: the files' "
                             "reading and decoding, which the direct run leaves out, then weigh as with real photos")
    args = parser.parse_args()
    if not os.path.isfile(args.config):
        subprocess.run([sys.executable, "-m", "ml", "tiny-models", "--out", str(Path(args.config).parent)], check=True)
    prefix = f"bench{os.getpid()}-"
    os.environ["RAZMETKA_QUEUE_PREFIX"] = prefix
    os.environ["RAZMETKA_ML_CONFIG"] = args.config
    for name, value in (("PRELABEL_BATCH_SIZE", args.batch), ("PRELABEL_CHUNK_SIZE", args.chunk),
                        ("PRELABEL_WRITE_EVERY_S", args.write_every)):
        if value is not None:
            os.environ[name] = str(value)
    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    args.batch, args.chunk = settings.PRELABEL_BATCH_SIZE, settings.PRELABEL_CHUNK_SIZE
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image as PILImage

    from backend.images.services import upload_images
    from backend.jobs import services
    from backend.jobs.engine import get_pipeline, read_rgb
    from backend.jobs.gallery_index import load_gallery
    from backend.jobs.models import PrelabelJob
    from backend.projects.services import create_project
    from ml.tiny import synthetic_image

    user = get_user_model().objects.create_user(f"jobs-bench-{time.time_ns()}")
    project = create_project(user=user, name="jobs-bench", box_threshold=0.0, text_threshold=0.0)
    files = []
    rng = np.random.default_rng(0)
    for i in range(args.images):
        buf = io.BytesIO()
        if args.photos:
            pixels = synthetic_image(1000 + i, h=3000, w=4000)
            pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
            PILImage.fromarray(pixels).save(buf, "JPEG", quality=90)
            files.append(SimpleUploadedFile(f"b{i}.jpg", buf.getvalue()))
        else:
            PILImage.fromarray(synthetic_image(1000 + i, h=240, w=320)).save(buf, "PNG")
            files.append(SimpleUploadedFile(f"b{i}.png", buf.getvalue()))
    images = upload_images(project=project, user=user, files=files).created
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backend.config", "worker", "-Q", f"{prefix}gpu,{prefix}cpu",
         "--pool", "solo", "-n", f"{prefix}@localhost", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        # Warm both sides BEFORE timing anything, each with the same calls it is timed on: a worker
        # still starting up would steal the cores from the direct run, and torch's CPU kernels
        # are set up per input shape on first use (a one-image warm-up left the first timed job
        # 0.1-0.3 s slower than the next two, the direct run's first chunk likewise).
        from backend.annotations.models import Annotation

        warm = services.start_job(project=project, user=user, images="all")
        _wait(PrelabelJob, warm.pk)
        Annotation.objects.filter(project=project).delete()
        pipeline = get_pipeline()
        arrays = [read_rgb(im.file.name) for im in images]
        gallery = load_gallery(project_id=project.pk, embedder_version=pipeline.embedder_version)
        for start in range(0, len(arrays), args.chunk):
            pipeline.annotate(arrays[start:start + args.chunk], gallery, prompts=project.prompts)

        directs, reading, runs = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            # The same model calls as the worker makes: PRELABEL_CHUNK_SIZE images each.
            for start in range(0, len(arrays), args.chunk):
                pipeline.annotate(arrays[start:start + args.chunk], gallery, prompts=project.prompts)
            directs.append(time.perf_counter() - t0)
            # The same, reading the files first, as a script would (seed 000 reads one at a time).
            t0 = time.perf_counter()
            for start in range(0, len(images), args.chunk):
                chunk = [read_rgb(im.file.name) for im in images[start:start + args.chunk]]
                pipeline.annotate(chunk, gallery, prompts=project.prompts)
            reading.append(time.perf_counter() - t0)
            # Each job starts from images without objects, as the first one did.
            Annotation.objects.filter(project=project).delete()
            # Timed to the job's own finished_at (PostgreSQL's clock, this machine's): polling the row
            # every few ms to see the end took CPU from the worker it was timing.
            t0 = time.time()
            job = services.start_job(project=project, user=user, images="all")
            job = _wait(PrelabelJob, job.pk)
            runs.append((job.finished_at.timestamp() - t0, job))
    finally:
        worker.terminate()
        worker.wait(30)
        from backend.annotations.models import Annotation

        Annotation.objects.filter(project=project).delete()
        project.delete()
        user.delete()
    n = len(arrays)
    print(f"images={n} batch={args.batch} chunk={args.chunk} write_every={settings.PRELABEL_WRITE_EVERY_S}s config={args.config} job_status={job.status}")
    print("runs (direct / job s): " + ", ".join(f"{d:.2f} / {r:.2f}" for d, (r, _) in zip(directs, runs)))
    direct = statistics.median(directs)
    via_job, job = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    print(f"direct: {direct:.2f}s {n / direct:.2f} img/s (median)")
    print(f"job:    {via_job:.2f}s {n / via_job:.2f} img/s (median; Celery, Postgres writes, events)")
    # Where the median job's time went: waiting for the worker, the models inside it, everything else.
    queued = (job.started_at - job.created_at).total_seconds()
    ran = (job.finished_at - job.started_at).total_seconds()
    models = sum(job.stage_ms.values()) / 1000
    print(f"job breakdown: start->claimed {via_job - ran:.2f}s (created->claimed {queued:.2f}s), "
          f"claimed->finished {ran:.2f}s (models {models:.2f}s, other {ran - models:.2f}s: reads, gallery, writes, events)")
    print(f"overhead_ratio={via_job / direct:.2f} (medians); per run: "
          + ", ".join(f"{r / d:.2f}" for d, (r, _) in zip(directs, runs)))
    with_reads = statistics.median(reading)
    print(f"direct reading the files too: {with_reads:.2f}s (median); job / that = {via_job / with_reads:.2f}; per run: "
          + ", ".join(f"{r / d:.2f}" for d, (r, _) in zip(reading, runs)))


def _wait(model, pk, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = model.objects.get(pk=pk)
        if job.status in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)  # the time is the job's finished_at, not when this loop sees it
    raise SystemExit(f"job {pk} did not finish")


if __name__ == "__main__":
    main()
