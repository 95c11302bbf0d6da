"""services.review_annotation for the hot route, in raw SQL on one kept-open connection.

Same rules, same order: lock the row (with its image's claim and the caller's role, read in
that same statement), REVIEW capability, the claim guard, the version check, "choose a class
before accepting it", a no-op decision writes nothing; the change is recorded by
changes.record_review_raw. Every refusal raises Fallback before anything is written, and the
request goes to the view, whose service gives the exact error (404, 403, 409 with the current
object or the claim holder, 400).
"""
from __future__ import annotations

from django.utils import timezone

from backend.images.models import Image
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import LabelClass, Membership

from . import changes
from .models import Annotation, ReviewState

_COLUMNS = (
    "id", "image_id", "label_class_id", "class_name", "mask_rle", "bbox", "area", "source", "det_score", "det_phrase",
    "mask_score", "class_score", "class_margin", "candidates", "class_review", "mask_review", "job_id", "created_at",
    "updated_at", "version", "updated_by_id", "claimed_by_id", "claim_expires_at", "role",
)
_SQL: str | None = None


def _sql() -> str:
    a, i = Annotation._meta.db_table, Image._meta.db_table
    lc, m = LabelClass._meta.db_table, Membership._meta.db_table
    return (
        "SELECT a.id, a.image_id, a.label_class_id, lc.name, a.mask_rle, a.bbox, a.area, a.source, a.det_score, "
        "a.det_phrase, a.mask_score, a.class_score, a.class_margin, a.candidates, a.class_review, a.mask_review, "
        "a.job_id, a.created_at, a.updated_at, a.version, a.updated_by_id, i.claimed_by_id, i.claim_expires_at, "
        f"(SELECT m.role FROM {m} m WHERE m.project_id = %s AND m.user_id = %s) "
        f"FROM {a} a JOIN {i} i ON i.id = a.image_id LEFT JOIN {lc} lc ON lc.id = a.label_class_id "
        "WHERE a.id = %s AND a.project_id = %s FOR UPDATE OF a"
    )


class Fallback(Exception):
    pass


def _iso(value) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _serialized(row: dict) -> dict:
    """AnnotationSerializer's fields, in its order."""
    return {
        "id": row["id"], "image": row["image_id"], "label_class": row["label_class_id"], "class_name": row["class_name"],
        "mask_rle": row["mask_rle"], "bbox": row["bbox"], "area": row["area"], "source": row["source"],
        "det_score": row["det_score"], "det_phrase": row["det_phrase"], "mask_score": row["mask_score"],
        "class_score": row["class_score"], "class_margin": row["class_margin"], "candidates": row["candidates"],
        "class_review": row["class_review"], "mask_review": row["mask_review"], "job_id": row["job_id"],
        "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]), "version": row["version"],
    }


async def review(conn, *, project_id: int, annotation_id: int, user_id: int, version: int, target: str,
                 decision: str) -> dict:
    """The review; returns the serialized object. Raises Fallback (nothing written) when the
    view must answer."""
    global _SQL
    if _SQL is None:
        _SQL = _sql()
    notices: list = []
    async with conn.transaction():
        found = await (await conn.execute(_SQL, (project_id, user_id, annotation_id, project_id))).fetchone()
        if found is None:
            raise Fallback()
        row = dict(zip(_COLUMNS, found))
        row["label_class"] = row["label_class_id"]
        if Capability.REVIEW not in ROLE_CAPABILITIES.get(row["role"], ()):
            raise Fallback()
        claimed = row["claimed_by_id"] and row["claim_expires_at"] and row["claim_expires_at"] > timezone.now()
        if claimed and row["claimed_by_id"] != user_id:
            raise Fallback()
        if row["version"] != version:
            raise Fallback()
        if decision == ReviewState.ACCEPTED and target in {"class", "both"} and row["label_class_id"] is None:
            raise Fallback()
        fields = {}
        if target in {"class", "both"}:
            fields["class_review"] = decision
        if target in {"mask", "both"}:
            fields["mask_review"] = decision
        if any(row[k] != v for k, v in fields.items()):
            written, notices = await changes.record_review_raw(
                conn, project_id=project_id, row=row, fields=fields, actor_id=user_id,
            )
            row.update(written)
    changes.publish(project_id, notices)
    return _serialized(row)
