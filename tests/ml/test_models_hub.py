"""`python -m ml models` (make models) against a local HTTP server that answers like the Hugging Face
hub: a real subprocess, the real huggingface_hub client, HF_ENDPOINT pointed at the server."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from ml.config import PipelineConfig
from ml.models_hub import DINOV3, GDINO, SAM2, SAM3

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """repos: repo id -> {path: bytes}; gated: repo id -> HTTP status it answers (401/403)."""

    def __init__(self, repos: dict[str, dict[str, bytes]], gated: dict[str, int] | None = None):
        self.repos, self.gated, self.requests = repos, gated or {}, []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _send(self, status, payload=b"", headers=None, body=True):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def _serve(self, body):
                path = unquote(urlparse(self.path).path)
                hub.requests.append((self.command, path))
                api = path.startswith("/api/models/")
                parts = path.split("/")[3:] if api else path.lstrip("/").split("/")
                repo = "/".join(parts[:2])
                if repo in hub.gated:  # what the hub sends for a gated repo without access
                    msg = f"Access to model {repo} is restricted. You must have access to it and be authenticated."
                    return self._send(hub.gated[repo], json.dumps({"error": msg}).encode(),
                                      {"X-Error-Code": "GatedRepo", "X-Error-Message": msg,
                                       "Content-Type": "application/json"}, body)
                files = hub.repos.get(repo)
                if files is None:
                    return self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"}, body)
                if api and len(parts) > 3 and parts[2] == "revision":
                    info = {"id": repo, "modelId": repo, "sha": SHA, "private": False,
                            "siblings": [{"rfilename": f} for f in files]}
                    return self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
                if api and len(parts) > 3 and parts[2] == "tree":
                    tree = [{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                            for f, b in files.items()]
                    return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
                if len(parts) > 4 and parts[2] == "resolve":
                    name = "/".join(parts[4:])
                    if name not in files:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                    data = files[name]
                    return self._send(200, data, {"X-Repo-Commit": SHA, "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                                                  "Content-Type": "application/octet-stream"}, body)
                return self._send(404, b"", {}, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_models(endpoint: str, out: Path, *extra: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(out.parent / "hf-home"),
               HF_HUB_DISABLE_XET="1", HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="10")
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "ml", "models", "--out", str(out), *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def folder_files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hub_repos(tiny_dir, tmp_path_factory):
    """The default engine's repos, served with tiny files (the real ones are GBs)."""
    import timm
    from safetensors.torch import save_file

    from ml.tiny import TINY_POOL, TINY_TIMM_ID, TINY_TIMM_KWARGS

    m = timm.create_model(TINY_TIMM_ID, pretrained=False, num_classes=0, global_pool=TINY_POOL, **TINY_TIMM_KWARGS)
    st = tmp_path_factory.mktemp("st") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(st))
    return {GDINO.repo_id: folder_files(tiny_dir / "grounding_dino"),
            SAM2.repo_id: {SAM2.files[0]: (tiny_dir / "sam2" / "sam2_tiny.pt").read_bytes()},
            DINOV3.repo_id: {DINOV3.files[0]: st.read_bytes()}}


def test_models_download_writes_a_loadable_config(hub_repos, tmp_path):
    hub = FakeHub(hub_repos)
    try:
        out = tmp_path / "models"
        r = run_models(hub.url, out)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "100%" in r.stderr  # progress bars are on
        cfg = PipelineConfig.from_file(out / "config.json")
        assert Path(cfg.detector.model) == (out / GDINO.key).resolve()
        for name, data in hub_repos[GDINO.repo_id].items():
            assert (out / GDINO.key / name).read_bytes() == data
        assert Path(cfg.segmenter.checkpoint).read_bytes() == hub_repos[SAM2.repo_id][SAM2.files[0]]
        assert Path(cfg.embedder.checkpoint).read_bytes() == hub_repos[DINOV3.repo_id][DINOV3.files[0]]
        assert cfg.embedder.model == "vit_large_patch16_dinov3.lvd1689m" and cfg.embedder.kind == "timm"
        assert cfg.segmenter.config == PipelineConfig().segmenter.config
        # the downloaded detector folder loads through the production loader
        import torch

        from ml.detector import Detector

        det = Detector.load(cfg.detector, torch.device("cpu"))
        assert det.model is not None

        # a rerun keeps the user's other settings and still loads (paths stay relative)
        raw = json.loads((out / "config.json").read_text())
        assert raw["detector"]["model"] == GDINO.key
        raw["detector"]["box_threshold"] = 0.42
        (out / "config.json").write_text(json.dumps(raw))
        assert run_models(hub.url, out).returncode == 0
        assert PipelineConfig.from_file(out / "config.json").detector.box_threshold == 0.42
        # a config.json broken by hand is left as it is, with a message
        (out / "config.json").write_text("{broken")
        r = run_models(hub.url, out)
        assert r.returncode == 1 and "could not be updated" in r.stderr and "Traceback" not in r.stderr
        assert (out / "config.json").read_text() == "{broken" and not (out / "config.json.tmp").exists()
    finally:
        hub.close()


def test_models_offline_points_to_tiny_models(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "models"
    r = run_models(f"http://127.0.0.1:{port}", out)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "cannot be reached" in r.stderr and "make tiny-models" in r.stderr and "offline" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "config.json").exists()


def test_models_hf_hub_offline_env(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "ml", "models", "--out", str(tmp_path / "m")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "HF_HUB_OFFLINE=1" in r.stderr and "make tiny-models" in r.stderr


@pytest.mark.parametrize("status", [401, 403])
def test_models_gated_dinov3_names_licence_page_and_token(hub_repos, tmp_path, status):
    repos = {k: v for k, v in hub_repos.items() if k != DINOV3.repo_id}
    hub = FakeHub(repos, gated={DINOV3.repo_id: status})
    try:
        out = tmp_path / "models"
        r = run_models(hub.url, out, token="hf_notreal" if status == 403 else None)
        assert r.returncode == 3, r.stderr[-3000:]
        err = r.stderr
        assert "DINOv3" in err and DINOV3.repo_id in err and f"{hub.url}/{DINOV3.repo_id}" in err
        assert "HF_TOKEN" in err and "huggingface-cli login" in err and "licence" in err
        assert ("has no access" in err) == (status == 403)  # says whether a token was used
        assert "Traceback" not in err
        assert not (out / "config.json").exists()  # no half config
        assert (out / GDINO.key / "config.json").is_file()  # what did download is kept for the rerun
    finally:
        hub.close()


def test_models_sam3_is_gated(hub_repos, tmp_path):
    hub = FakeHub(hub_repos, gated={SAM3.repo_id: 403})
    try:
        r = run_models(hub.url, tmp_path / "models", "--engine", "sam3", token="hf_notreal")
        assert r.returncode == 3, r.stderr[-3000:]
        assert "SAM 3" in r.stderr and f"{hub.url}/facebook/sam3" in r.stderr and "HF_TOKEN" in r.stderr
        assert any(p.startswith("/api/models/facebook/sam3") for _, p in hub.requests)
    finally:
        hub.close()


@pytest.mark.parametrize("present, env, expected", [
    ((), None, ("", "")),
    (("tiny-models",), None, ("tiny-models", "tiny-models")),
    (("tiny-models", "models"), None, ("models", "models")),  # real weights win over tiny ones
    (("tiny-models", "models"), "", ("", "env")),  # set but empty: no models, on purpose
    (("models",), "/x/config.json", ("/x/config.json", "env")),
])
def test_make_run_finds_the_downloaded_config(tmp_path, present, env, expected):
    """settings.RAZMETKA_ML_CONFIG (what `make run`'s workers load) with RAZMETKA_ML_CONFIG unset/set."""
    var = tmp_path / "var"
    for name in present:
        (var / name).mkdir(parents=True)
        (var / name / "config.json").write_text("{}")
    e = {k: v for k, v in os.environ.items() if k != "RAZMETKA_ML_CONFIG"}
    # server URLs given, so importing the settings starts no embedded PostgreSQL/Redis
    e.update(RAZMETKA_VAR_DIR=str(var), DATABASE_URL="postgres://u:p@127.0.0.1:9/x", REDIS_URL="redis://127.0.0.1:9/0")
    if env is not None:
        e["RAZMETKA_ML_CONFIG"] = env
    r = subprocess.run([sys.executable, "-c", "import json, backend.config.settings as s; "
                        "print(json.dumps([s.RAZMETKA_ML_CONFIG, s.RAZMETKA_ML_CONFIG_SOURCE]))"],
                       cwd=ROOT, env=e, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    path, source = json.loads(r.stdout.strip().splitlines()[-1])
    want_path, want_source = expected
    if want_path in ("models", "tiny-models"):
        want_path = str(var / want_path / "config.json")
    assert (path, source) == (want_path, want_source)


def test_models_sam3_download_fills_the_sam3_section(hub_repos, tiny_dir, tmp_path):
    if not (tiny_dir / "sam3" / "config.json").is_file():
        pytest.skip("this tree's tiny models have no SAM 3")
    hub = FakeHub({**hub_repos, SAM3.repo_id: folder_files(tiny_dir / "sam3")})
    try:
        out = tmp_path / "models"
        r = run_models(hub.url, out, "--engine", "sam3", token="hf_accepted")
        assert r.returncode == 0, r.stderr[-3000:]
        cfg = PipelineConfig.from_file(out / "config.json")
        assert Path(cfg.sam3.model) == (out / SAM3.key).resolve()
        served = {k: v for k, v in folder_files(tiny_dir / "sam3").items() if k.endswith((".json", ".txt", ".safetensors"))}
        assert served and all((out / SAM3.key / k).read_bytes() == v for k, v in served.items())
        assert Path(cfg.detector.model) == (out / GDINO.key).resolve()  # one config serves every engine
    finally:
        hub.close()
