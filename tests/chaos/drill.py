"""Chaos drill: kill every piece of a running app, in turn, under load, and check nothing was lost.

Run: .venv/bin/python tests/chaos/drill.py [--images 120] [--reviewers 20] [--gap 6]

It starts `manage.py serve` (web + cpu worker + gpu worker with the tiny random models) on
embedded PostgreSQL and Redis of its own (a scratch RAZMETKA_VAR_DIR, so the suite's servers are
never touched), seeds a project, starts a pre-annotation job and a write storm of N reviewers,
then SIGKILLs in turn: the web process, the cpu worker, the gpu worker, Redis and PostgreSQL,
waiting for each to come back. Afterwards it checks:
  1. every write that answered 2xx is in the audit trail (its annotation id and version);
  2. the job ends with exactly one prediction set per image (no image written twice);
  3. no client saw a 5xx other than 503 (Retry-After) while a piece was down, and never a 500.
It prints a table of the attacks (downtime, errors seen during each) and exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.live_server import free_port  # noqa: E402

STARTED = re.compile(r"started ([\w-]+) \(pid (\d+)\)")
GRACE_S = 3.0  # a request in flight when a piece came back may still see the outage


@dataclass
class Outcome:
    at: float
    kind: str
    status: int | None  # None: connection error
    annotation: int | None = None
    version: int | None = None
    action: str | None = None


@dataclass
class Attack:
    target: str
    killed_at: float = 0.0
    back_at: float = 0.0
    seen: Counter = field(default_factory=Counter)


class App:
    def __init__(self, var: Path, port: int, env: dict):
        self.var, self.port, self.env = var, port, env
        self.log_path = var.parent / "serve.log"
        self.proc = None

    def start(self) -> None:
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port)], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, name: str) -> list[int]:
        # "web" is the first of the web processes (serve runs several on one port: web-1, web-2, ...)
        name = "web-1" if name == "web" else name
        return [int(pid) for who, pid in STARTED.findall(self.text()) if who == name]

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/api/health/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        for pid_file, sig in ((self.var / "redis" / "redis.pid", signal.SIGTERM), (self.var / "pg" / "postmaster.pid", signal.SIGINT)):
            try:
                os.kill(int(pid_file.read_text().split()[0]), sig)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass


def wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"drill: timed out after {timeout:.0f} s waiting for {what}")


def seed(n_images: int, n_reviewers: int):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image as PILImage
    from rest_framework.authtoken.models import Token

    from backend.annotations.services import create_annotation
    from backend.images.services import upload_images
    from backend.projects.models import LabelClass, Membership
    from backend.projects.services import create_project
    from ml.tiny import synthetic_image

    User = get_user_model()
    admin = User.objects.get(username="admin")
    project = create_project(user=admin, name="chaos", box_threshold=0.0, text_threshold=0.0)
    classes = [LabelClass.objects.create(project=project, name=n) for n in ("hammer", "wrench")]
    files = []
    for i in range(n_images):
        buf = io.BytesIO()
        PILImage.fromarray(synthetic_image(2000 + i, h=240, w=320)).save(buf, "PNG")
        files.append(SimpleUploadedFile(f"c{i}.png", buf.getvalue()))
    images = upload_images(project=project, user=admin, files=files).created
    for image in images:  # one object per image made by a person: the storm edits these
        create_annotation(project=project, image_id=image.pk, user=admin, class_id=classes[0].pk,
                          polygons=[[20, 20, 120, 20, 120, 90, 20, 90]])
    tokens = []
    for i in range(n_reviewers):
        user = User.objects.create_user(f"reviewer{i}")
        Membership.objects.create(project=project, user=user, role="reviewer")
        tokens.append(Token.objects.create(user=user).key)
    admin_token = Token.objects.get_or_create(user=admin)[0].key
    from django.db import connections

    connections.close_all()
    return project.pk, [im.pk for im in images], [c.pk for c in classes], tokens, admin_token


def storm(base: str, project: int, images: list[int], classes: list[int], token: str, out: list, stop: threading.Event, seed_: int):
    import httpx

    rng = random.Random(seed_)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30)
    while not stop.is_set():
        image = rng.choice(images)
        try:
            detail = client.get(f"/api/projects/{project}/images/{image}/")
            out.append(Outcome(time.monotonic(), "read", detail.status_code))
            if detail.status_code != 200:
                time.sleep(0.2)
                continue
            annotations = [a for a in detail.json().get("annotations", []) if a.get("source") == "human"]
            if not annotations:
                continue
            ann = rng.choice(annotations)
            if rng.random() < 0.5:
                body, path, action = ({"version": ann["version"], "label_class": rng.choice(classes)},
                                      f"/api/projects/{project}/annotations/{ann['id']}/", "patch")
                response = client.patch(path, json=body)
            else:
                body = {"version": ann["version"], "target": "mask", "decision": rng.choice(["accepted", "pending"])}
                action = "review"
                response = client.post(f"/api/projects/{project}/annotations/{ann['id']}/review/", json=body)
            result = Outcome(time.monotonic(), "write", response.status_code, ann["id"], None, action)
            if response.status_code in (200, 201):
                result.version = response.json()["version"]
            out.append(result)
        except httpx.HTTPError:
            out.append(Outcome(time.monotonic(), "error", None))
            time.sleep(0.2)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--gap", type=float, default=6.0, help="seconds of storm between recovery and the next kill")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="razmetka-chaos-"))
    var = scratch / "var"
    tiny = scratch / "tiny"
    subprocess.run([sys.executable, "-m", "ml", "tiny-models", "--out", str(tiny)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "XDG_RUNTIME_DIR", "RAZMETKA_DB_NAME"}}
    env.update({
        "RAZMETKA_VAR_DIR": str(var), "MEDIA_ROOT": str(scratch / "media"), "RAZMETKA_ML_CONFIG": str(tiny / "config.json"),
        "RAZMETKA_ADMIN_USER": "admin", "RAZMETKA_ADMIN_PASSWORD": "chaos-admin-pw", "HF_HUB_OFFLINE": "1",
        "DJANGO_SETTINGS_MODULE": "backend.config.settings",
    })
    os.environ.update(env)
    for key in ("DATABASE_URL", "REDIS_URL", "XDG_RUNTIME_DIR", "RAZMETKA_DB_NAME"):
        os.environ.pop(key, None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = App(var, port, env)
    app.start()
    attacks: list[Attack] = []
    outcomes: list[Outcome] = []
    try:
        wait(app.healthy, 240, "the app to start")
        wait(lambda: len(re.findall(r"@\S+ ready", app.text())) >= 2, 240, "both workers")
        project, images, classes, tokens, admin_token = seed(args.images, args.reviewers)
        import httpx

        admin = httpx.Client(base_url=base, headers={"Authorization": f"Token {admin_token}"}, timeout=30)
        job = admin.post(f"/api/projects/{project}/jobs/", json={"images": "all"}).json()
        print(f"job {job['id']}: {job['total']} images; storm: {args.reviewers} reviewers")
        stop = threading.Event()
        threads = [threading.Thread(target=storm, args=(base, project, images, classes, t, outcomes, stop, i), daemon=True)
                   for i, t in enumerate(tokens)]
        for t in threads:
            t.start()
        time.sleep(args.gap)

        def kill(target: str) -> Attack:
            attack = Attack(target)
            if target in ("web", "cpu", "gpu"):
                pid, count = app.pids(target)[-1], len(app.pids(target))
                ready = len(re.findall(rf"{target}@\S+ ready", app.text()))
                os.kill(pid, signal.SIGKILL)
                attack.killed_at = time.monotonic()
                wait(lambda: len(app.pids(target)) > count, 120, f"{target} to restart")
                if target == "web":
                    wait(app.healthy, 60, "the web server")
                else:
                    wait(lambda: len(re.findall(rf"{target}@\S+ ready", app.text())) > ready, 180, f"{target} worker ready")
            else:
                pid_file = var / ("redis/redis.pid" if target == "redis" else "pg/postmaster.pid")
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                attack.killed_at = time.monotonic()
                time.sleep(1.5)
                wait(app.healthy, 120, f"{target} to come back")
            attack.back_at = time.monotonic()
            print(f"  killed {target:6s} back after {attack.back_at - attack.killed_at:5.1f} s")
            return attack

        for target in ("web", "cpu", "gpu", "redis", "postgres"):
            attacks.append(kill(target))
            time.sleep(args.gap)
        stop.set()
        for t in threads:
            t.join(timeout=60)

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                state = admin.get(f"/api/projects/{project}/jobs/{job['id']}/").json()
                if state["status"] in ("done", "failed", "cancelled"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        job_done_after = time.monotonic() - attacks[0].killed_at
        return report(job["id"], state, outcomes, attacks, job_done_after)
    finally:
        app.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"scratch folder: {scratch}")


def report(job_id: int, job: dict, outcomes: list[Outcome], attacks: list[Attack], job_done_after: float) -> int:
    from django.db import connections
    from django.db.models import Count

    from backend.annotations.models import Annotation, AnnotationEvent
    from backend.jobs.models import PrelabelJobImage

    connections.close_all()
    failures = []

    def during(t: float) -> Attack | None:
        return next((a for a in attacks if a.killed_at <= t <= a.back_at + GRACE_S), None)

    status_counts = Counter()
    for o in outcomes:
        label = "conn-error" if o.status is None else str(o.status)
        status_counts[label] += 1
        attack = during(o.at)
        if attack is not None:
            attack.seen[label] += 1
        if o.status is not None and o.status >= 500 and not (o.status == 503 and attack is not None):
            failures.append(f"{o.kind} answered {o.status} outside any outage" if attack is None else f"{o.kind} answered {o.status}")
        if o.status is None and attack is None:
            failures.append("connection error outside any outage")

    # 1. Every 2xx write is in the audit trail.
    writes = [o for o in outcomes if o.kind == "write" and o.status in (200, 201)]
    recorded = set(
        AnnotationEvent.objects.filter(annotation_id__in={o.annotation for o in writes}).exclude(after=None)
        .values_list("annotation_id", "after__version")
    )
    missing = [o for o in writes if (o.annotation, o.version) not in recorded]
    if missing:
        failures.append(f"{len(missing)} acknowledged writes are not in the audit trail")

    # 2. One prediction set per image: model objects created once per image, as many as the item says.
    items = {i.image_id: i for i in PrelabelJobImage.objects.filter(job_id=job_id)}
    created = dict(
        AnnotationEvent.objects.filter(image_id__in=items, action="created", actor=None)
        .values_list("image_id").annotate(n=Count("id")).values_list("image_id", "n")
    )
    model_now = dict(
        Annotation.objects.filter(image_id__in=items, source="model", job_id=job_id)
        .values_list("image_id").annotate(n=Count("id")).values_list("image_id", "n")
    )
    written_twice = [i for i, item in items.items() if created.get(i, 0) != item.detections]
    mismatched = [i for i, item in items.items() if model_now.get(i, 0) != item.detections]
    not_done = [i for i, item in items.items() if item.status != "done"]
    if job.get("status") != "done" or not_done:
        failures.append(f"job ended {job.get('status')} with {len(not_done)} items not done")
    if written_twice or mismatched:
        failures.append(f"{len(written_twice)} images written more than once, {len(mismatched)} with a different prediction count")

    print()
    print("| attack | back after (s) | storm answers while down |")
    print("|---|---|---|")
    for a in attacks:
        seen = ", ".join(f"{k}: {v}" for k, v in sorted(a.seen.items())) or "-"
        print(f"| SIGKILL {a.target} | {a.back_at - a.killed_at:.1f} | {seen} |")
    print()
    print(f"requests: {len(outcomes)}; answers: {dict(sorted(status_counts.items()))}")
    print(f"acknowledged writes: {len(writes)}; in the audit trail: {len(writes) - len(missing)}")
    print(f"job: {job.get('status')}, {job.get('processed')}/{job.get('total')} processed, {job.get('failed')} failed; "
          f"finished {job_done_after:.0f} s after the first kill; images written twice: {len(written_twice)}")
    print(json.dumps({"failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
