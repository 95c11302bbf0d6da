"""Review benchmark: a scripted browser session reviews N pre-labeled images whose predictions are
all correct, then opens a 12-megapixel image with 50 objects.

    .venv/bin/python tests/benchmarks/review_bench.py [--images 20 --objects 8 --big-objects 50]

Prints seconds per image and keystrokes per image for the review loop (goal: 1 keystroke,
<= 3 s per image), the time until every overlay of the 12 MP image is drawn (goal: < 1 s), and
frame times while zooming, panning and brushing on it. It runs against the dev database (the
embedded server under var/, or DATABASE_URL) in a scratch project and user that are removed
afterwards; daphne serves the built frontend (run `make frontend` first) on a free port, and
headless Debian chromium (/usr/bin/chromium) drives it.
"""
from __future__ import annotations

import argparse
import io
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares this thread
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

FRAME_PROBE = """async ({kind, frames}) => {
  const c = document.querySelector('[data-testid=review-canvas]');
  const r = c.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const raf = () => new Promise((res) => requestAnimationFrame(res));
  const fire = (type, x, y) => c.dispatchEvent(new PointerEvent(type, {clientX: x, clientY: y, bubbles: true, pointerId: 1, button: 0, buttons: 1, isPrimary: true}));
  await raf();
  const times = [];
  let last = performance.now();
  if (kind !== 'zoom') fire('pointerdown', cx, cy);
  for (let i = 0; i < frames; i++) {
    const t = (i % 40) - 20;
    if (kind === 'zoom') c.dispatchEvent(new WheelEvent('wheel', {clientX: cx, clientY: cy, deltaY: t < 0 ? -60 : 60, bubbles: true}));
    else fire('pointermove', cx + 8 * t, cy + 3 * t);
    await raf();
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  if (kind !== 'zoom') fire('pointerup', cx, cy);
  return times;
}"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jpeg(width: int, height: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(1, height // 16), max(1, width // 16), 3), dtype=np.uint8)
    img = PILImage.fromarray(small).resize((width, height), PILImage.BILINEAR)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--big-objects", type=int, default=50)
    parser.add_argument("--big-runs", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    import cv2
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection
    from django.test import Client
    from playwright.sync_api import sync_playwright

    from backend.annotations.models import Annotation, ReviewState, Source
    from backend.core.masks import mask_geometry
    from backend.images.models import Image, ImageStatus
    from backend.images.services import upload_images
    from backend.projects.models import LabelClass
    from backend.projects.services import create_project
    from tests.e2e.seed import rle_of

    if not (ROOT / "frontend" / "dist" / "index.html").is_file():
        sys.exit("frontend/dist is missing: run `make frontend` first")

    user = get_user_model().objects.create_user(f"bench-{secrets.token_hex(4)}", password=secrets.token_urlsafe(16))
    project = create_project(user=user, name=f"review-bench-{secrets.token_hex(3)}")
    palette = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
    classes = [LabelClass.objects.create(project=project, name=f"tool-{i}", color=palette[i % 8]) for i in range(8)]
    rng = np.random.default_rng(1)

    def predictions(image, count: int, size_lo: int, size_hi: int) -> None:
        rows = []
        for k in range(count):
            mask = np.zeros((image.height, image.width), np.uint8)
            cx, cy = int(rng.integers(size_hi, image.width - size_hi)), int(rng.integers(size_hi, image.height - size_hi))
            axes = (int(rng.integers(size_lo, size_hi)), int(rng.integers(size_lo // 3, size_hi // 3)))
            cv2.ellipse(mask, (cx, cy), axes, float(rng.integers(0, 180)), 0, 360, 1, -1)
            rle = rle_of(mask)
            bbox, area = mask_geometry(rle)
            cls = classes[k % len(classes)]
            alt = classes[(k + 1) % len(classes)]
            rows.append(Annotation(
                project=project, image=image, label_class=cls, mask_rle=rle, bbox=bbox, area=area, source=Source.MODEL,
                det_score=0.9, mask_score=0.9, class_score=0.8, class_margin=0.3,
                candidates=[{"class_id": cls.pk, "name": cls.name, "score": 0.8, "exemplar_id": None},
                            {"class_id": alt.pk, "name": alt.name, "score": 0.5, "exemplar_id": None}],
                class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING,
            ))
        Annotation.objects.bulk_create(rows)

    def add_image(name: str, width: int, height: int, seed: int):
        report = upload_images(project=project, user=user, files=[SimpleUploadedFile(name, jpeg(width, height, seed), content_type="image/jpeg")])
        assert report.created, report.errors
        return report.created[0]

    print(f"seeding {args.images} images {args.width}x{args.height} x {args.objects} objects, "
          f"and one 4000x3000 image x {args.big_objects} objects ...", flush=True)
    images = []
    for i in range(args.images):
        im = add_image(f"bench-{i}.jpg", args.width, args.height, i)
        predictions(im, args.objects, 60, 220)
        images.append(im)
    big = add_image("big-12mp.jpg", 4000, 3000, 999)
    predictions(big, args.big_objects, 80, 360)
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.PRELABELED)
    Image.objects.filter(pk=big.pk).update(status=ImageStatus.DONE)  # kept out of the review queue

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env["RAZMETKA_DB_NAME"] = connection.settings_dict["NAME"]
    log = open(ROOT / "var" / "bench-server.log", "ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "backend.config.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/auth/me/", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("daphne did not start; see var/bench-server.log")
                time.sleep(0.3)
        client = Client()
        client.force_login(user)
        session = client.cookies["sessionid"].value

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=url, viewport={"width": 1600, "height": 1000})
            context.add_cookies([{"name": "sessionid", "value": session, "url": url}])
            page = context.new_page()
            page.set_default_timeout(30000)

            # --- the review loop: one Enter per image
            page.goto(f"/p/{project.pk}/review")
            page.wait_for_selector("[data-overlays-ready]")
            per_image, keys = [], 0
            t_all = time.perf_counter()
            for _ in range(args.images):
                current = page.get_attribute("[data-testid=review-canvas]", "data-overlays-ready")
                t0 = time.perf_counter()
                page.keyboard.press("Enter")
                keys += 1
                page.wait_for_function(
                    """(cur) => { const c = document.querySelector('[data-testid=review-canvas]');
                                  return document.querySelector('[data-testid=queue-empty]') ||
                                         (c && c.dataset.overlaysReady && c.dataset.overlaysReady !== cur); }""",
                    arg=current,
                )
                per_image.append(time.perf_counter() - t0)
            total = time.perf_counter() - t_all
            page.wait_for_selector("[data-testid=queue-empty]")
            done = Image.objects.filter(pk__in=[i.pk for i in images], status=ImageStatus.DONE).count()
            print(f"review loop: {args.images} images x {args.objects} objects ({args.width}x{args.height}), {done} done")
            print(f"  seconds per image: mean {statistics.mean(per_image):.3f}  median {statistics.median(per_image):.3f}  "
                  f"max {max(per_image):.3f}  (total {total:.1f} s)")
            print(f"  keystrokes per image: {keys / args.images:.2f}")

            # --- 12 MP, 50 objects: time to every overlay drawn, on a fresh page each run
            overlay_ms, image_ms = [], []
            for _ in range(args.big_runs):
                p2 = context.new_page()
                p2.set_default_timeout(30000)
                p2.goto(f"/p/{project.pk}/images")  # app loaded; then open the workspace like a user does
                p2.wait_for_selector("table")
                p2.evaluate(f"() => {{ history.pushState(null, '', '/p/{project.pk}/review/{big.pk}'); dispatchEvent(new PopStateEvent('popstate')); }}")
                p2.wait_for_selector(f'[data-overlays-ready="{big.pk}"]')
                p2.wait_for_selector(f'[data-image-ready="{big.pk}"]')
                m = p2.evaluate("() => window.__razmetka")
                overlay_ms.append(m["overlayMs"])
                image_ms.append(m["imageMs"])
                if _ < args.big_runs - 1:
                    p2.close()
            print(f"12 MP image (4000x3000), {args.big_objects} objects, {args.big_runs} cold opens:")
            print(f"  all overlays drawn after: median {statistics.median(overlay_ms):.0f} ms  max {max(overlay_ms):.0f} ms")
            print(f"  image pixels decoded after: median {statistics.median(image_ms):.0f} ms  max {max(image_ms):.0f} ms")
            for kind in ("zoom", "pan"):
                frames = p2.evaluate(FRAME_PROBE, {"kind": kind, "frames": 80})[5:]
                print(f"  {kind}: frame interval median {statistics.median(frames):.1f} ms  p95 {pct(frames, 0.95):.1f} ms")
            p2.keyboard.press("b")
            frames = p2.evaluate(FRAME_PROBE, {"kind": "brush", "frames": 80})[5:]
            print(f"  brush: frame interval median {statistics.median(frames):.1f} ms  p95 {pct(frames, 0.95):.1f} ms")
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        from django.core.files.storage import default_storage

        for name in Image.objects.filter(project=project).values_list("file", flat=True):
            default_storage.delete(name)
        Annotation.objects.filter(project=project).delete()
        project.delete()
        user.delete()


if __name__ == "__main__":
    main()
