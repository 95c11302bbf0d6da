"""A model's evidence for an object a person is about to create (Box → SAM in the workspace).

The gpu worker proposes a class for a new mask with top-k candidates, like any model object.
The browser then creates the object through the normal API; the evidence must not come from
the browser (a client could invent it), so the server keeps it in Redis for a short while under
an unguessable token, bound to the project, image, user and the exact mask, and the create call
names the token. A token is used once; an expired or foreign one adds no evidence."""
from __future__ import annotations

import hashlib
import json
import secrets

import redis
from django.conf import settings

from backend.core.redis_client import shared as _redis

TTL_S = 15 * 60


def _key(token: str) -> str:
    return f"{settings.QUEUE_PREFIX}razmetka:proposal:{token}"


def _mask_digest(mask_rle: dict) -> str:
    return hashlib.sha256(json.dumps([mask_rle.get("size"), mask_rle.get("counts")]).encode()).hexdigest()


def remember(*, project_id: int, image_id: int, user_id: int, result: dict) -> str | None:
    """Keep the evidence of a segment result; returns its token (None if Redis is unavailable:
    the object can still be created, only without the evidence)."""
    token = secrets.token_urlsafe(18)
    record = {
        "project": project_id, "image": image_id, "user": user_id, "mask": _mask_digest(result["mask_rle"]),
        "label_class": result.get("label_class"), "class_score": result.get("class_score"),
        "class_margin": result.get("class_margin"), "candidates": result.get("candidates") or [],
    }
    try:
        _redis().set(_key(token), json.dumps(record), ex=TTL_S)
    except redis.RedisError:
        return None
    return token


def take(token: str, *, project_id: int, image_id: int, user_id: int, mask_rle: dict, label_class_id: int | None) -> dict:
    """The Annotation fields the proposal vouches for ({} when it does not apply): candidates for
    this exact mask, and the scores only when the person kept the proposed class."""
    try:
        raw = _redis().getdel(_key(token))
    except redis.RedisError:
        return {}
    if raw is None:
        return {}
    record = json.loads(raw)
    if (record["project"], record["image"], record["user"]) != (project_id, image_id, user_id):
        return {}
    if record["mask"] != _mask_digest(mask_rle):
        return {}
    fields = {"candidates": record["candidates"]}
    if label_class_id is not None and label_class_id == record["label_class"]:
        fields.update(class_score=record["class_score"], class_margin=record["class_margin"])
    return fields
