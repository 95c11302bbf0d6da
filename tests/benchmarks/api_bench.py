"""Review API under load: N concurrent reviewers read and update one 12 MP image with 50 objects.

Run: .venv/bin/python tests/benchmarks/api_bench.py [--clients 50] [--seconds 60] [--web-processes N]
         [--only read|write] [--server uvicorn|daphne]
Starts its own ASGI servers the way `manage.py serve` does (N uvicorn processes accepting on one
socket; default as serve chooses) on a free loopback port over the embedded servers, works in a
scratch project and deletes it afterwards. Prints requests/s, p50/p95 latency per kind, the
error count, and CPU per request of the client, the web processes, PostgreSQL (all its
processes) and Redis. The load generator runs on the same machine and takes CPU from the servers.

Each simulated reviewer holds one keep-alive connection and speaks HTTP/1.1 through a minimal
client (`Conn` below): httpx's AsyncClient spent 9-11 ms of CPU per request with 50 connections,
more than the server, so with it the bench measured the client. `--client httpx` keeps the old one.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def seed(clients: int, objects: int, auth: str = "token"):
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
        if auth == "session":  # as the browser signs in: a session cookie, and CSRF for writes
            from django.test import Client

            browser = Client()
            browser.force_login(user)
            csrf = "c" * 32
            tokens.append({"Cookie": f"sessionid={browser.cookies['sessionid'].value}; csrftoken={csrf}",
                           "X-CSRFToken": csrf})
        else:
            tokens.append({"Authorization": f"Token {Token.objects.create(user=user).key}"})
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


class Conn:
    """One keep-alive HTTP/1.1 connection: send a request, read status, headers and a
    Content-Length (or chunked) body. Just enough for this bench, and cheap on CPU."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status = int((await self.reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n"):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and value == b"close":
                close = True
        if chunked:
            parts = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await self.reader.readexactly(size + 2))[:-2])
            await self.reader.readuntil(b"\r\n")
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def reviewer(port, base, token, image_id, annotation_id, deadline, samples, errors, measure_from=0.0, only="",
                   join_after=0.0):
    await asyncio.sleep(join_after)
    conn = Conn("127.0.0.1", port)
    headers = dict(token)
    version = 1
    decision = "accepted"
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            if only != "write":
                status, _ = await conn.request("GET", f"{base}/images/{image_id}/", headers)
                samples["sent"] += 1
                if time.monotonic() >= measure_from:
                    samples["read"].append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(status)
                if only == "read":
                    continue
            t0 = time.perf_counter()
            body = json.dumps({"version": version, "target": "class", "decision": decision}).encode()
            status, data = await conn.request("POST", f"{base}/annotations/{annotation_id}/review/",
                                              {**headers, "Content-Type": "application/json"}, body)
            samples["sent"] += 1
            if time.monotonic() >= measure_from:
                samples["write"].append(time.perf_counter() - t0)
                samples["per_client"][id(conn)] += 1
            if status == 200:
                version = json.loads(data)["version"]
                decision = "rejected" if decision == "accepted" else "accepted"
            else:
                errors.append(status)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            conn.close()
    conn.close()


async def reviewer_httpx(client, base, token, image_id, annotation_id, deadline, samples, errors, measure_from=0.0):
    import httpx

    headers = dict(token)
    version = 1
    decision = "accepted"
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            r = await client.get(f"{base}/images/{image_id}/", headers=headers)
            if time.monotonic() >= measure_from:
                samples["read"].append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(r.status_code)
            t0 = time.perf_counter()
            r = await client.post(f"{base}/annotations/{annotation_id}/review/", headers=headers,
                                  json={"version": version, "target": "class", "decision": decision})
            samples["sent"] += 2
            if time.monotonic() >= measure_from:
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


async def run_load(port, project_id, image_id, annotation_ids, tokens, seconds, client_kind="raw", warmup=0.0, only=""):
    """`warmup` seconds of the same load first, not recorded: every server process has imported
    Django, opened its connections and rendered the image once before the clock starts. The
    clients join over the first half of it, as a team's browsers do: 50 connections opened in the
    same millisecond were taken by whichever process woke first (49 / 1 was seen), and keep-alive
    keeps them there for the whole run."""
    samples = {"read": [], "write": [], "sent": 0, "per_client": collections.Counter()}
    errors: list = []
    measure_from = time.monotonic() + warmup
    deadline = measure_from + seconds
    if client_kind == "raw":
        await asyncio.gather(*[
            reviewer(port, f"/api/projects/{project_id}", token, image_id, annotation_ids[i % len(annotation_ids)],
                     deadline, samples, errors, measure_from, only, join_after=i * warmup / 2 / len(tokens))
            for i, token in enumerate(tokens)
        ])
        return samples, errors
    import httpx

    base = f"http://127.0.0.1:{port}/api/projects/{project_id}"
    limits = httpx.Limits(max_connections=len(tokens) + 5)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*[
            reviewer_httpx(client, base, token, image_id, annotation_ids[i % len(annotation_ids)], deadline, samples,
                           errors, measure_from)
            for i, token in enumerate(tokens)
        ])
    return samples, errors


def _cpu_seconds(pids) -> float:
    """User + system CPU of these processes so far (Linux /proc), 0 where unreadable."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _cpu_by_name(names: tuple[str, ...]) -> float:
    """User + system CPU so far of every process whose name is one of `names` (PostgreSQL's
    backends come and go, so they are summed by name; exited ones are not counted)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() in names:
                    pids.append(int(entry))
            except OSError:
                pass
    return _cpu_seconds(pids)


def _wait_until_serving(port: int, timeout: float = 120) -> None:
    """Until a web process answers /api/health/ (importing Django takes seconds, far more on a
    busy machine); the warm-up then gives the others time to come up too."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/", timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("no web process answered within 120 s")
            time.sleep(0.2)


def _connections(pid: int) -> int:
    import psutil

    try:
        return sum(1 for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED and c.raddr)
    except psutil.Error:
        return -1


def _wait_until_idle(pids, quiet: float = 0.5, timeout: float = 120) -> None:
    """Until every web process has stopped using CPU for `quiet` seconds: they have all imported
    Django and wait on the socket. One answering is not enough: a process still starting takes no
    connections, so it would serve a handful for the whole run (37 / 13 was seen), which measures
    the bench's start, not the server."""
    deadline = time.monotonic() + timeout
    last = _cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = _cpu_seconds(pids)
        if now - last < 0.02:
            return
        last = now


def server_command(kind: str, fd: int) -> list[str]:
    if kind == "daphne":
        return [sys.executable, "-m", "daphne", "--fd", str(fd), "backend.config.asgi:application"]
    from backend.core.management.commands.serve import uvicorn_command

    return uvicorn_command(sys.executable, fd=fd)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--web-processes", type=int, default=0, help="0: what manage.py serve chooses")
    parser.add_argument("--reuseport", action="store_true",
                        help="experiment: a socket per web process (SO_REUSEPORT: the kernel spreads connections)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of unrecorded load first")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load generator (see the docstring)")
    parser.add_argument("--auth", choices=["token", "session"], default="token",
                        help="how each reviewer signs in (session: a cookie + CSRF, as the browser)")
    parser.add_argument("--only", choices=["read", "write"], default="",
                        help="each client sends only this kind (default: a read, then a write)")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn",
                        help="ASGI server (uvicorn is what manage.py serve runs)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    project, image, annotation_ids, tokens, owner = seed(args.clients, args.objects, args.auth)
    from backend.core.management.commands.serve import default_web_processes, listen

    processes = args.web_processes or default_web_processes()
    port = free_port()
    socks = [listen("127.0.0.1", port, reuse_port=True) for _ in range(processes)] if args.reuseport else [listen("127.0.0.1", port)] * processes
    servers = [
        subprocess.Popen(
            server_command(args.server, sock.fileno()),
            cwd=ROOT, stdout=subprocess.DEVNULL, pass_fds=(sock.fileno(),),
            stderr=open(os.environ["API_BENCH_LOG"], "ab") if os.environ.get("API_BENCH_LOG") else subprocess.DEVNULL,
        )
        for sock in socks
    ]
    try:
        _wait_until_serving(port)
        _wait_until_idle([p.pid for p in servers])
        cpu0, server0 = os.times(), _cpu_seconds([p.pid for p in servers])
        pg0, redis0 = _cpu_by_name(("postgres",)), _cpu_by_name(("redis-server",))
        spread: list[int] = []
        # Half-way through the load: the clients' connections held by each web process.
        timer = threading.Timer(args.warmup + args.seconds / 2,
                                lambda: spread.extend(_connections(p.pid) for p in servers))
        timer.start()
        samples, errors = asyncio.run(run_load(port, project.pk, image.pk, annotation_ids, tokens, args.seconds, args.client,
                                           args.warmup, args.only))
        cpu1, server1 = os.times(), _cpu_seconds([p.pid for p in servers])
        pg1, redis1 = _cpu_by_name(("postgres",)), _cpu_by_name(("redis-server",))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:  # still importing Django on a busy machine, say
                server.kill()
                server.wait()
        for sock in set(socks):
            sock.close()
        try:
            cleanup(project, owner)
        except Exception as exc:  # e.g. a dev database behind on migrations; the numbers still stand
            print(f"cleanup failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); scratch project {project.pk} is left")
    total = len(samples["read"]) + len(samples["write"])
    print(f"clients={args.clients} objects={args.objects} seconds={args.seconds:.0f} warmup={args.warmup:.0f} image=4000x3000 "
          f"server={args.server} auth={args.auth} web_processes={processes} cores={os.cpu_count()}")
    for kind in ("read", "write"):
        values = samples[kind]
        print(f"{kind:5s}: n={len(values)} p50={pct(values, .5):.1f}ms p95={pct(values, .95):.1f}ms "
              f"mean={statistics.fmean(values) * 1000 if values else float('nan'):.1f}ms")
    sent = max(samples["sent"], 1)
    # Uneven counts in two groups = the clients' connections are unevenly spread over the web
    # processes (each process serves its own at the same rate).
    counts = sorted(samples["per_client"].values())
    if counts:
        print(f"writes per client: min={counts[0]} median={counts[len(counts) // 2]} max={counts[-1]}")
    if spread:
        print(f"client connections per web process (mid-run): {spread}")
    client_cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / sent * 1000
    server_cpu = (server1 - server0) / sent * 1000  # the web processes only, not PostgreSQL or Redis
    print(f"requests_per_s={total / args.seconds:.1f} errors={len(errors)} {sorted(set(map(str, errors)))[:5]} "
          f"client={args.client} client_cpu_per_request={client_cpu:.2f}ms web_cpu_per_request={server_cpu:.2f}ms "
          f"postgres_cpu_per_request={(pg1 - pg0) / sent * 1000:.2f}ms redis_cpu_per_request={(redis1 - redis0) / sent * 1000:.2f}ms "
          f"load_1min_before={load_before:.1f} after={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
