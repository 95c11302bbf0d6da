"""Peak memory of one process validating several pixel bombs at once (what N simultaneous
`POST images/` requests do to a web process: each request thread calls validate_image).

Run: .venv/bin/python tests/benchmarks/decode_memory_bench.py [--count 4]
Each bomb is an all-zero 16-bit RGBA PNG of ~10,000 x 10,000 px (~750 KB sent, ~760 MB decoded),
or with --palette a palette PNG with transparency (~94 KB sent, 100 MB decoded, 400 MB as the
thumbnail's RGBA copy), each a little different so no hash dedup applies. Prints the process's
peak RSS and the time.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--palette", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    from backend.core.uploads import UploadError, validate_image
    from tests.backend.test_round9_decode import palette_png, zero_png

    bombs = [(palette_png if args.palette else zero_png)(9990 - i, 10000) for i in range(args.count)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    outcomes = []

    def one(data: bytes) -> None:
        try:
            validate_image(data)
            outcomes.append("stored")
        except UploadError as exc:
            outcomes.append(str(exc)[:60])

    start = time.monotonic()
    threads = [threading.Thread(target=one, args=(b,)) for b in bombs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    kind = "palette" if args.palette else "16-bit RGBA"
    print(f"{args.count} {kind} bombs at once: peak RSS {peak} MB (before {before} MB), {time.monotonic() - start:.1f} s; {outcomes}")


if __name__ == "__main__":
    main()
