"""GET /api/engines/: the pre-annotation engines a project can choose, what each needs, and
whether this server's model config points at weights for it.

Reads ml/engines/catalog.json and the config file as data: importing the ml package imports
torch, which would stall a web process's first request for seconds (tens on a busy box)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

CATALOG = Path(__file__).resolve().parents[2] / "ml" / "engines" / "catalog.json"


def _read_config(path: str) -> dict | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
        if path.lower().endswith((".yaml", ".yml")):
            from omegaconf import OmegaConf

            return OmegaConf.to_container(OmegaConf.create(text), resolve=True)
        return json.loads(text)
    except Exception:  # missing or broken: every engine shows as not configured; jobs say why
        return None


# The files each engine loads besides its own model (catalog.json's model_setting): a missing SAM 2
# checkpoint was "configured: true" and every job on it failed image by image (black-box round 18).
# Optional ones (None / "" in the config: a hub download or not used) are not required.
_ALSO_NEEDS = {"gdino-sam2": ("segmenter.checkpoint", "embedder.checkpoint"), "sam3": ("embedder.checkpoint",),
               "maskrcnn": ()}
_DEFAULTS = {"detector.model": "IDEA-Research/grounding-dino-tiny", "sam3.model": "facebook/sam3"}


def _value(cfg: dict, setting: str):
    section, key = setting.split(".")
    value = (cfg.get(section) or {}).get(key)
    return _DEFAULTS.get(setting) if value is None else value


def _configured(cfg: dict | None, base: Path, setting: str, required: bool = True) -> bool | None:
    """True: the model folder/file exists (or, not `required`, none is set); False: missing, or
    no config; None: a hub id (the worker downloads it, or fails the job naming the setting)."""
    if cfg is None:
        return False
    value = _value(cfg, setting)
    if not value:
        return not required
    value = os.path.expanduser(str(value))
    if os.path.isabs(value):
        return os.path.exists(value)
    if (base / value).exists():
        return True
    hub_id = "/" in value and not value.startswith(".") and setting != "maskrcnn.model"  # no hub for Mask R-CNN
    return None if hub_id else False


def _state(cfg: dict | None, base: Path, row: dict) -> tuple[bool | None, str | None]:
    """(configured, why not) of one engine: False with the first missing file, None when a hub id
    is left to the worker, True when every file is here."""
    states = [(row["model_setting"], _configured(cfg, base, row["model_setting"]))]
    states += [(s, _configured(cfg, base, s, required=False)) for s in _ALSO_NEEDS.get(row["name"], ())]
    for setting, state in states:
        if state is False:
            value = _value(cfg, setting) if cfg is not None else None
            return False, (f"{setting} {str(value)!r} is not on this server" if value else f"{setting} is not set")
    return (None if None in (s for _, s in states) else True), None


def _config() -> tuple[dict | None, Path, str | None]:
    """(the config, its folder, why it cannot be used) as this server reads RAZMETKA_ML_CONFIG."""
    path = settings.RAZMETKA_ML_CONFIG
    if not path:
        return None, Path("."), "RAZMETKA_ML_CONFIG is not set"
    shown = os.path.basename(path)
    if not os.path.isfile(path):
        return None, Path(path).parent, f"RAZMETKA_ML_CONFIG points at '{shown}', which is not on this server"
    cfg = _read_config(path)
    if not isinstance(cfg, dict):
        return None, Path(path).parent, f"RAZMETKA_ML_CONFIG '{shown}' cannot be read (not a JSON or YAML mapping)"
    return cfg, Path(path).parent, None


def engines() -> list[dict]:
    rows = json.loads(CATALOG.read_text(encoding="utf-8"))
    cfg, base, problem = _config()
    default = (cfg or {}).get("engine", "gdino-sam2")
    out = []
    for row in rows:
        configured, why = (False, problem) if problem else _state(cfg, base, row)
        out.append({**row, "configured": configured, "problem": why, "default": row["name"] == default})
    return out


def engine_problem(engine: str | None) -> str | None:
    """Why `engine` (None: any, the config alone) surely cannot run with this server's model config,
    or None. With RAZMETKA_ML_CONFIG unset here the workers (maybe on other hosts) decide: None."""
    if not settings.RAZMETKA_ML_CONFIG:
        return None
    cfg, base, problem = _config()
    if problem or engine is None:
        return problem
    row = next((r for r in json.loads(CATALOG.read_text(encoding="utf-8")) if r["name"] == engine), None)
    if row is None or engine == "maskrcnn":  # a project's own trained Mask R-CNN needs no configured one
        return None
    return _state(cfg, base, row)[1]


class EnginesView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=inline_serializer("Engine", many=True, fields={
        "name": serializers.CharField(), "title": serializers.CharField(), "weights": serializers.CharField(),
        "hub_ids": serializers.ListField(child=serializers.CharField()), "gated": serializers.BooleanField(),
        "text_prompts": serializers.BooleanField(), "boxes_given": serializers.CharField(),
        "trainable": serializers.BooleanField(), "config_section": serializers.CharField(),
        "model_setting": serializers.CharField(),
        "configured": serializers.BooleanField(allow_null=True),
        "problem": serializers.CharField(allow_null=True), "default": serializers.BooleanField(),
    }))
    def get(self, request):
        return Response(engines())


urlpatterns = [path("", EnginesView.as_view(), name="engines")]
