"""``python -m ml models`` / ``make models``: download real weights from the Hugging Face hub into a
folder (default ``var/models``) and write ``config.json`` there with paths relative to it, so the
folder can be copied to an offline machine as a whole.

Exit codes: 0 done, 2 the hub cannot be reached (offline), 3 a gated model needs a token or an
accepted licence, 1 anything else. Files already downloaded stay, so a rerun resumes.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

EXIT_OFFLINE = 2
EXIT_GATED = 3
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class HubModel:
    key: str  # folder under --out
    title: str
    repo_id: str
    files: tuple[str, ...] = ()  # single files (hf_hub_download); empty: a whole snapshot
    patterns: tuple[str, ...] = ("*.json", "*.txt", "*.safetensors")  # snapshot files (not .bin/.pt duplicates)
    required: tuple[str, ...] = ("config.json",)  # must exist afterwards (a partial folder is no model)
    gated: bool = False


GDINO = HubModel("grounding-dino-tiny", "GroundingDINO tiny (detector)", "IDEA-Research/grounding-dino-tiny")
SAM2 = HubModel("sam2.1-hiera-tiny", "SAM 2.1 hiera-tiny (segmenter)", "facebook/sam2.1-hiera-tiny",
                files=("sam2.1_hiera_tiny.pt",), required=("sam2.1_hiera_tiny.pt",))
DINOV3 = HubModel("dinov3-vitl16", "DINOv3 ViT-L/16 (embedder, timm)", "timm/vit_large_patch16_dinov3.lvd1689m",
                  files=("model.safetensors",), required=("model.safetensors",), gated=True)
SAM3 = HubModel("sam3", "SAM 3 (text -> masks)", "facebook/sam3", gated=True)
DINOV3_TIMM_ID = "vit_large_patch16_dinov3.lvd1689m"

ENGINE_MODELS = {"gdino-sam2": (GDINO, SAM2, DINOV3), "sam3": (GDINO, SAM2, DINOV3, SAM3)}


class HubUnreachable(Exception):
    pass


class HubGated(Exception):
    pass


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def offline_message(reason: str) -> str:
    return (f"Cannot download models: the model hub ({_endpoint()}) cannot be reached ({reason}).\n"
            "This machine looks offline. Without weights Razmetka still runs end to end on tiny random-weight "
            "models (their predictions are meaningless): make tiny-models\n"
            "For real weights run `make models` where the hub is reachable and copy var/models here as a whole "
            "(config.json uses paths relative to it).")


def gated_message(m: HubModel, status: int | None) -> str:
    from huggingface_hub import get_token

    page = f"{_endpoint()}/{m.repo_id}"
    who = ("the token in use (HF_TOKEN or the saved login) has no access to it yet"
           if get_token() else "no Hugging Face token was given")
    what = "is a gated model and the hub refused the download" if m.gated else "was refused by the hub (private or gated)"
    return (f"{m.title} ({m.repo_id}) {what}"
            f"{f' (HTTP {status})' if status else ''}: {who}.\n"
            f"1. Sign in at {_endpoint()} and accept the licence on {page}\n"
            f"2. Create a read token at {_endpoint()}/settings/tokens and either\n"
            "   export HF_TOKEN=hf_...   or   huggingface-cli login   (`hf auth login` in newer versions)\n"
            "3. Run `make models` again; files already downloaded are kept.")


def _classify(m: HubModel, e: Exception) -> Exception:
    """Turn huggingface_hub's errors into the two a user can act on; others pass through."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(e, GatedRepoError):
        return HubGated(gated_message(m, getattr(getattr(e, "response", None), "status_code", None)))
    if isinstance(e, HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):  # the hub answers 401 for a gated repo without a token
            return HubGated(gated_message(m, status))
        return e
    if isinstance(e, (OfflineModeIsEnabled, ConnectionError, TimeoutError)) or _is_connect_error(e):
        return HubUnreachable(offline_message(f"{type(e).__name__}: {e}"))
    if isinstance(e, LocalEntryNotFoundError):  # not reachable and not downloaded before
        cause = e.__cause__ or e
        return HubUnreachable(offline_message(f"{type(cause).__name__}: {str(cause).splitlines()[0][:200]}"))
    return e


def _is_connect_error(e: Exception) -> bool:
    # huggingface_hub's http client (httpx, or its fork httpx2 in 2.x): match by name, not by import
    return any(c.__name__ in ("ConnectError", "ConnectTimeout", "TimeoutException") for c in type(e).__mro__)


def download(m: HubModel, out: Path) -> Path:
    """Download one model into ``out/m.key`` (progress bars on stderr); returns that folder."""
    from huggingface_hub import hf_hub_download, snapshot_download

    dest = out / m.key
    try:
        if m.files:
            for f in m.files:
                hf_hub_download(m.repo_id, f, local_dir=dest)
        else:
            snapshot_download(m.repo_id, local_dir=dest, allow_patterns=list(m.patterns))
    except Exception as e:
        err = _classify(m, e)
        if err is e:
            raise
        raise err from e
    missing = [f for f in m.required if not (dest / f).is_file()]
    if missing:
        raise RuntimeError(f"{m.title}: {m.repo_id} was downloaded to {dest} but {missing} is missing")
    return dest


def write_config(out: Path, models: tuple[HubModel, ...]) -> Path:
    """``out/config.json`` pointing at the downloaded models. An existing one keeps every other
    setting (thresholds, calibrated batch sizes); only the model locations change."""
    from ml.config import PipelineConfig

    path = out / CONFIG_NAME
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else PipelineConfig().to_dict()
    data.setdefault("detector", {})["model"] = GDINO.key
    seg = data.setdefault("segmenter", {})
    seg["config"] = PipelineConfig().segmenter.config  # packaged with sam2: SAM 2.1 hiera-tiny
    seg["checkpoint"] = f"{SAM2.key}/{SAM2.files[0]}"
    emb = data.setdefault("embedder", {})
    emb.update(kind="timm", model=DINOV3_TIMM_ID, checkpoint=f"{DINOV3.key}/{DINOV3.files[0]}", pretrained=True,
               model_kwargs={}, global_pool="token")
    if SAM3 in models:
        data.setdefault("sam3", {})["model"] = SAM3.key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    try:
        PipelineConfig.from_file(tmp)  # never leave a config behind that the workers cannot read
    except Exception:
        tmp.unlink()
        raise
    tmp.replace(path)
    return path


def run(out: str, engine: str = "gdino-sam2") -> int:
    from huggingface_hub import constants
    from huggingface_hub.utils import enable_progress_bars

    from ml.errors import ConfigError

    models = ENGINE_MODELS[engine]
    if constants.HF_HUB_OFFLINE:
        print(offline_message("HF_HUB_OFFLINE=1 is set"), file=sys.stderr)
        return EXIT_OFFLINE
    enable_progress_bars()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    print(f"downloading {len(models)} models from {_endpoint()} into {root}:", file=sys.stderr)
    for m in models:
        print(f"  {m.title}: {m.repo_id}{' (gated)' if m.gated else ''}", file=sys.stderr)
    for m in models:
        print(f"\n{m.title} <- {m.repo_id}", file=sys.stderr)
        try:
            download(m, root)
        except HubUnreachable as e:
            print(f"\n{e}", file=sys.stderr)
            return EXIT_OFFLINE
        except HubGated as e:
            print(f"\n{e}", file=sys.stderr)
            return EXIT_GATED
        except Exception as e:  # a hub outage (5xx), a full disk: say which model, keep what is there
            print(f"\n{m.title} ({m.repo_id}) could not be downloaded: {type(e).__name__}: {e}\n"
                  "Files already downloaded are kept; run `make models` again to resume.", file=sys.stderr)
            return 1
    try:
        cfg = write_config(root, models)
    except (ValueError, ConfigError) as e:  # a hand-edited config.json that no longer parses: leave it as it is
        print(f"\nThe models are in {root}, but {root / CONFIG_NAME} could not be updated: {e}\n"
              "Fix or delete that file and run `make models` again (nothing is downloaded twice).", file=sys.stderr)
        return 1
    print(f"\nwrote {cfg}\n`make run` uses it (RAZMETKA_ML_CONFIG unset); the CLI: "
          f"python -m ml annotate --config {cfg} --images DIR --gallery DIR --out predictions.json")
    return 0
