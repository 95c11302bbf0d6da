"""Runs the frontend's Vitest suite (canvas/RLE module) inside `make test`."""
import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def test_vitest_suite_passes():
    npx = shutil.which("npx")
    if npx is None or not (FRONTEND / "node_modules" / ".bin" / "vitest").exists():
        pytest.skip("frontend dependencies are not installed (make frontend)")
    result = subprocess.run([npx, "vitest", "run"], cwd=FRONTEND, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
