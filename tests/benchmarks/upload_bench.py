"""Chunked upload benchmark: N photos of 12 MP sent through the chunked API by a concurrent
client, against a plain disk copy of the same files on the same machine.

    .venv/bin/python tests/benchmarks/upload_bench.py [--count 200 --clients 4 --workers 2 --keep]

The goal run is `--count 10000` (10,000 images of 12 MP in one go): throughput >= 50% of the
disk copy, 0 duplicates stored. 200 is the default so the run fits a few minutes here.

What it does:
- generates the photos once into a temp dir (reused by later runs with the same --count):
  4000x3000 JPEGs, smooth content plus grain, about 2-4 MB each, every one distinct;
- copies them with shutil three times (plain disk copy, sync before and after) and takes the median;
- starts the web server (uvicorn) and a cpu Celery worker on a database of its own (`razmetka_upload_bench`,
  dropped afterwards unless --keep) and a media root in a temp dir;
- uploads every file with --clients threads, each: open a session, PUT 8 MiB chunks (the last one
  with finish=1, as the browser sends it);
  then waits until the worker has processed all of them (decode, hash, dedup, thumbnail, store).
  Two throughputs: "bytes sent" = bytes / (first request .. the last file's bytes in media
  storage, its processing queued), and "processed" = bytes / (first request .. last session
  done), i.e. end to end, the workers' decoding on the same cores;
- uploads the same set again (with the client hash, as the browser sends it) and then once more
  without it (the worker must dedup), and counts images stored: duplicates stored = rows - N.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
DB_NAME = "razmetka_upload_bench"


def _one_photo(args) -> None:
    import numpy as np
    from PIL import Image as PILImage

    path, seed, width, height = args
    rng = np.random.default_rng(seed)
    # Smooth colour fields (like a scene) upscaled, plus sensor-like grain: JPEG sizes near real photos.
    small = PILImage.fromarray(rng.integers(0, 255, (height // 100, width // 100, 3), dtype=np.uint8))
    base = np.asarray(small.resize((width, height), PILImage.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    pixels = np.clip(base + grain, 0, 255).astype(np.uint8)
    PILImage.fromarray(pixels).save(path, format="JPEG", quality=90)


def make_photos(count: int, width: int, height: int) -> Path:
    from multiprocessing import Pool

    folder = Path(tempfile.gettempdir()) / f"razmetka-upload-bench-{count}-{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(folder / f"photo-{i:05d}.jpg", i, width, height) for i in range(count)]
    todo = [t for t in todo if not t[0].exists()]
    if todo:
        print(f"generating {len(todo)} photos of {width}x{height} into {folder} (once) …", flush=True)
        with Pool(os.cpu_count() or 2) as pool:
            pool.map(_one_photo, todo, chunksize=4)
    return folder


def disk_copy(files: list[Path], target: Path, repeats: int = 3) -> list[float]:
    """Seconds for each of `repeats` plain copies of every file, flushed to disk (one copy swung
    from 1.4 to 2.7 s between runs here; the median is the yardstick)."""
    times = []
    for _ in range(repeats):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        os.sync()
        start = time.perf_counter()
        for f in files:
            shutil.copyfile(f, target / f.name)
        os.sync()
        times.append(time.perf_counter() - start)
    return times


def setup_database(keep: bool) -> str:
    import django

    from tests.benchmarks.import_bench import drop_database, ensure_database

    django.setup()
    if not keep:
        drop_database(DB_NAME)
    ensure_database(DB_NAME)
    os.environ["RAZMETKA_DB_NAME"] = DB_NAME
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    settings.DATABASES["default"]["NAME"] = DB_NAME
    connections.close_all()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from backend.projects.services import create_project

    user, _ = get_user_model().objects.get_or_create(username="bench-uploader")
    project = create_project(user=user, name=f"upload bench {int(time.time())}")
    token, _ = Token.objects.get_or_create(user=user)
    return f"{project.pk}:{token.key}"


def start_worker(env: dict, concurrency: int) -> subprocess.Popen:
    from django.conf import settings

    log = open(ROOT / "var" / "upload-bench-worker.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backend.config", "worker", "-Q", settings.QUEUE_CPU,
         "-c", str(concurrency), "-n", f"upload-bench-{os.getpid()}@localhost", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


class Client:
    def __init__(self, url: str, project: int, token: str) -> None:
        import requests

        self.base = f"{url}/api/projects/{project}/images/uploads/"
        self.local = threading.local()
        self.headers = {"Authorization": f"Token {token}"}
        self.requests = requests

    @property
    def http(self):
        if not hasattr(self.local, "s"):
            self.local.s = self.requests.Session()
            self.local.s.headers.update(self.headers)
        return self.local.s

    def send(self, path: Path, with_hash: bool) -> int:
        size = path.stat().st_size
        body = {"file_name": path.name, "size_bytes": size}
        if with_hash:  # the browser hashes files up to 32 MB before sending
            body["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        r = self.http.post(self.base, json=body)
        r.raise_for_status()
        session = r.json()
        offset, chunk = session["received_bytes"], session["chunk_bytes"]
        if session["status"] != "receiving":
            return session["id"]
        with open(path, "rb") as fh:
            while offset < size:
                fh.seek(offset)
                data = fh.read(chunk)
                last = "&finish=1" if offset + len(data) == size else ""  # as the browser does
                r = self.http.put(f"{self.base}{session['id']}/?offset={offset}{last}", data=data,
                                  headers={"Content-Type": "application/octet-stream"})
                r.raise_for_status()
                offset = r.json()["received_bytes"]
        return session["id"]


def wait_done(session_ids: list[int], timeout: float) -> dict:
    """Poll the database (not the API: it would compete with the upload) until all are done."""
    from backend.images.models import UploadSession

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = UploadSession.objects.filter(pk__in=session_ids).exclude(status__in=["done", "failed"]).count()
        if pending == 0:
            break
        time.sleep(0.25)
    totals = {"created": 0, "duplicates": 0, "errors": 0, "failed": 0}
    for status, result in UploadSession.objects.filter(pk__in=session_ids).values_list("status", "result"):
        totals["failed"] += status == "failed"
        for key in ("created", "duplicates", "errors"):
            totals[key] += len((result or {}).get(key, []))
    return totals


def upload_pass(client: Client, files: list[Path], clients: int, with_hash: bool) -> tuple[float, float, dict]:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        ids = list(pool.map(lambda p: client.send(p, with_hash), files))
    sent = time.perf_counter() - start
    totals = wait_done(ids, timeout=3600)
    return sent, time.perf_counter() - start, totals


def _cpu_split(server: subprocess.Popen, worker: subprocess.Popen) -> dict[str, float]:
    """CPU seconds so far of this process (the upload client), the web server, the cpu worker
    (with its pool processes) and PostgreSQL: where an upload's time goes on shared cores."""
    import psutil

    def tree(pid: int) -> float:
        try:
            procs = [psutil.Process(pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    postgres = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"]:
            postgres += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    me = os.times()
    return {"client": me.user + me.system, "web": tree(server.pid), "worker": tree(worker.pid), "postgres": postgres}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="photos (the goal run is 10000)")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent upload threads")
    parser.add_argument("--workers", type=int, default=2, help="cpu worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    folder = make_photos(args.count, args.width, args.height)
    files = sorted(folder.glob("photo-*.jpg"))[: args.count]
    total = sum(f.stat().st_size for f in files)
    mib = total / (1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="razmetka-bench-media-") as media:
        copies = disk_copy(files, Path(media) / "copy")
        copy_s = statistics.median(copies)
        shutil.rmtree(Path(media) / "copy")
        os.environ["MEDIA_ROOT"] = str(Path(media) / "media")
        project_id, token = setup_database(args.keep).split(":")
        from tests.live_server import start_web, stop
        from tests.worker import stop_worker

        env = {**os.environ, "RAZMETKA_DB_NAME": DB_NAME}
        worker = start_worker(env, args.workers)
        server, url = start_web(DB_NAME, log_name="upload-bench-server.log",
                                   extra_env={"MEDIA_ROOT": os.environ["MEDIA_ROOT"]})
        try:
            client = Client(url, int(project_id), token)
            cpu0 = _cpu_split(server, worker)
            sent_s, done_s, first = upload_pass(client, files, args.clients, with_hash=False)
            cpu1 = _cpu_split(server, worker)
            _, again_s, hashed = upload_pass(client, files, args.clients, with_hash=True)
            _, blind_s, blind = upload_pass(client, files, args.clients, with_hash=False)
        finally:
            stop(server)
            stop_worker(worker)
        from backend.images.models import Image

        stored = Image.objects.filter(project_id=project_id).count()
        unique = Image.objects.filter(project_id=project_id).values("sha256").distinct().count()
    if not args.keep:
        from tests.benchmarks.import_bench import drop_database

        drop_database(DB_NAME)

    copy_rate, up_rate, sent_rate = mib / copy_s, mib / done_s, mib / sent_s
    print(f"\n{args.count} photos of {args.width}x{args.height}, {mib:.0f} MiB, {os.cpu_count()} cores, "
          f"{args.clients} client threads, {args.workers} cpu worker processes")
    print(f"plain disk copy (median):   {copy_s:7.1f} s  {copy_rate:8.1f} MB/s  "
          f"(copies: {', '.join(f'{t:.2f}' for t in copies)} s)")
    print(f"chunked upload, bytes sent: {sent_s:7.1f} s  {sent_rate:8.1f} MB/s  = {sent_rate / copy_rate:.0%} of the disk copy "
          "(every file stored and queued for the cpu workers)")
    print(f"chunked upload, processed:  {done_s:7.1f} s  {up_rate:8.1f} MB/s  "
          f"= {up_rate / copy_rate:.0%} of the disk copy (goal >= 50%)")
    print(f"  first pass:   {first}")
    print("  CPU per photo, first pass: " + ", ".join(
        f"{k} {(cpu1[k] - cpu0[k]) / args.count * 1000:.0f} ms" for k in cpu0))
    print(f"  same set again, client hash:   {again_s:6.1f} s  {hashed}")
    print(f"  same set again, server dedup:  {blind_s:6.1f} s  {blind}")
    print(f"images stored: {stored}, distinct hashes: {unique}, duplicates stored: {stored - unique} (expected 0)"
          f"{'' if stored == args.count else f'  WARNING: expected {args.count}'}")


if __name__ == "__main__":
    main()
