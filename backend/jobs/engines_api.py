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


def _configured(cfg: dict | None, base: Path, setting: str) -> bool | None:
    """True: the model folder/file exists; False: missing, or no config; None: a hub id (the
    worker downloads it, or fails the job naming the setting). Defaults: ml.config's."""
    if cfg is None:
        return False
    section, key = setting.split(".")
    value = (cfg.get(section) or {}).get(key)
    if value is None:
        from_defaults = {"detector.model": "IDEA-Research/grounding-dino-tiny", "sam3.model": "facebook/sam3"}
        value = from_defaults.get(setting)
    if not value:
        return False
    value = os.path.expanduser(str(value))
    if os.path.isabs(value):
        return os.path.exists(value)
    if (base / value).exists():
        return True
    hub_id = "/" in value and not value.startswith(".") and setting != "maskrcnn.model"  # no hub for Mask R-CNN
    return None if hub_id else False


def engines() -> list[dict]:
    rows = json.loads(CATALOG.read_text(encoding="utf-8"))
    path = settings.RAZMETKA_ML_CONFIG
    cfg = _read_config(path) if path else None
    default = (cfg or {}).get("engine", "gdino-sam2")
    base = Path(path).parent if path else Path(".")
    return [{**row, "configured": _configured(cfg, base, row["model_setting"]), "default": row["name"] == default}
            for row in rows]


class EnginesView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=inline_serializer("Engine", many=True, fields={
        "name": serializers.CharField(), "title": serializers.CharField(), "weights": serializers.CharField(),
        "hub_ids": serializers.ListField(child=serializers.CharField()), "gated": serializers.BooleanField(),
        "text_prompts": serializers.BooleanField(), "boxes_given": serializers.CharField(),
        "trainable": serializers.BooleanField(), "config_section": serializers.CharField(),
        "model_setting": serializers.CharField(),
        "configured": serializers.BooleanField(allow_null=True), "default": serializers.BooleanField(),
    }))
    def get(self, request):
        return Response(engines())


urlpatterns = [path("", EnginesView.as_view(), name="engines")]
