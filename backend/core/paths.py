"""Server paths as members see them: relative to the app's folder, never the host's layout."""
from __future__ import annotations

from pathlib import PurePath

from django.conf import settings


def shown_path(path: str) -> str:
    """"var/tiny-models/config.json" for a file in the app's folder; else its last two parts
    ("…/models/config.json"). Admins who set the path know where it is; others need not."""
    if not path:
        return path
    pure = PurePath(path)
    try:
        return str(pure.relative_to(settings.BASE_DIR))
    except ValueError:
        return "…/" + "/".join(pure.parts[-2:]) if len(pure.parts) > 2 else path
