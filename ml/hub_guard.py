"""Hub ids in a config are fetched by the libraries on first use. Offline that was minutes of
retries for every load (`{}` as the config, a config without a detector section: 2 min here,
black-box round 16b): a hub id whose files are not cached on this machine is refused at once when
the hub does not take a connection."""
from __future__ import annotations

import os
import socket
import urllib.request
from urllib.parse import urlparse

from .errors import ModelLoadError, missing_path

PROBE_TIMEOUT_S = 3.0


# What a transformers model folder needs: its config, its weights (one of the forms) and its
# processor's config. A cache holding config.json alone (a download cut short) passed a check of
# config.json and then retried the rest for 5 minutes offline (black-box round 17b).
TRANSFORMERS_FILES = (("config.json",),
                      ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"),
                      ("preprocessor_config.json", "processor_config.json"))
WEIGHTS_FILES = (("model.safetensors", "pytorch_model.bin"),)


def require_model_source(setting: str, value: object, src: str) -> None:
    """A transformers model given as a folder or a hub id ("org/name"): a folder must be there; a
    hub id must be cached or the hub reachable (require_hub_files). A bare name ("sam3",
    "grounding_dino") or a path ("./x", "/x", "~/x", an existing file) is a folder that is missing
    (a model folder copied without it): from_pretrained tried it on the hub for minutes of
    retries offline (black-box round 16)."""
    if os.path.isdir(src):
        return
    if src.startswith((".", "/", "~")) or "/" not in src or os.path.exists(src):
        raise ModelLoadError(setting, value, missing_path(src, "folder"))
    require_hub_files(setting, value, src)


def require_hub_files(setting: str, value: object, repo_id: str, files: tuple[tuple[str, ...], ...] = TRANSFORMERS_FILES) -> None:
    """Pass when `repo_id` has one file of each group of `files` in the local hub cache, or the hub
    can be reached; else a ModelLoadError naming `setting` and how to get the weights here."""
    from huggingface_hub import try_to_load_from_cache

    try:
        if all(any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in group) for group in files):
            return
    except ValueError:  # not a valid repo id: the library's own load says so
        return
    why = hub_unreachable()
    if why:
        raise ModelLoadError(
            setting, value,
            f"is a hub id whose files are not (all) on this machine, and the hub cannot be reached ({why})",
            hint="a local copy: `make models` downloads the default weights where there is internet "
                 "(copy var/models/ here), `make tiny-models` writes random-weight models for a trial")


def hub_unreachable() -> str | None:
    """None when the hub endpoint (or the proxy in front of it) takes a TCP connection, else why not."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1 is set"
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or host, via.port or 80
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None
