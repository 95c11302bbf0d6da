"""Hub ids in a config are fetched by the libraries on first use. Offline that was minutes of
retries for every load (`{}` as the config, a config without a detector section: 2 min here,
black-box round 16b): a hub id whose files are not cached on this machine is refused at once when
the hub does not take a connection."""
from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlparse

from .errors import ModelLoadError

PROBE_TIMEOUT_S = 3.0


def require_hub_files(setting: str, value: object, repo_id: str, filename: str = "config.json") -> None:
    """Pass when `repo_id`'s `filename` is in the local hub cache or the hub can be reached; else a
    ModelLoadError naming `setting` and how to get the weights here."""
    from huggingface_hub import try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(repo_id, filename), str):
            return
    except ValueError:  # not a valid repo id: the library's own load says so
        return
    why = hub_unreachable()
    if why:
        raise ModelLoadError(
            setting, value,
            f"is a hub id whose files are not on this machine, and the hub cannot be reached ({why})",
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
