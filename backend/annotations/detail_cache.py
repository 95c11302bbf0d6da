"""The image detail for the hot route: raw SQL on a kept-open connection, and each object's
rendered JSON cached per (object version, class version).

A review changes one object at a time, so under load an image's whole-body fingerprint
(selectors.annotation_rows_json) changes on almost every read; caching each object's fragment
instead means a read after a change re-renders one object, not fifty. Versions only grow and
every write (any source) bumps them, a class rename bumps the class's, so a fragment whose
versions match is the current one; the versions come in the same query as the image.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict

from django.contrib.auth import get_user_model

from backend.core.hot_asgi import drf_datetime
from backend.images.models import Image
from backend.images.versions import last_event_sql
from backend.projects.models import LabelClass

from .models import Annotation
from .selectors import _rows

FRAGMENTS_MAX = 20_000
_fragments: OrderedDict[int, tuple[int, int, bytes]] = OrderedDict()
_lock = threading.Lock()


def _sql() -> tuple[str, str, list[str]]:
    image_t, ann_t, class_t = Image._meta.db_table, Annotation._meta.db_table, LabelClass._meta.db_table
    user_t = get_user_model()._meta.db_table
    columns = [f.column for f in Image._meta.concrete_fields]
    head = (
        f"SELECT {', '.join('i.' + c for c in columns)}, cu.username, {last_event_sql('i.id')}, r.ids, r.versions, "
        "r.classes, r.pending "
        f"FROM {image_t} i LEFT JOIN {user_t} cu ON cu.id = i.claimed_by_id "
        f"CROSS JOIN LATERAL (SELECT array_agg(a.id ORDER BY a.id) ids, array_agg(a.version ORDER BY a.id) versions, "
        f"array_agg(coalesce(lc.version, 0) ORDER BY a.id) classes, "
        "count(*) FILTER (WHERE a.class_review = 'pending' OR a.mask_review = 'pending') pending FROM "
        f"{ann_t} a "
        f"LEFT JOIN {class_t} lc ON lc.id = a.label_class_id WHERE a.image_id = i.id) r "
        "WHERE i.id = %(i)s AND i.project_id = %(p)s"
    )
    rows = (
        "SELECT a.id, a.image_id, a.label_class_id, lc.name, a.mask_rle, a.bbox, a.area, a.source, a.det_score, "
        "a.mask_score, a.class_score, a.class_margin, a.candidates, a.class_review, a.mask_review, a.job_id, "
        "a.created_at, a.updated_at, a.version, a.det_phrase, coalesce(lc.version, 0) "
        f"FROM {ann_t} a LEFT JOIN {class_t} lc ON lc.id = a.label_class_id WHERE a.image_id = %s AND a.id = ANY(%s)"
    )
    return head, rows, [f.attname for f in Image._meta.concrete_fields]


_SQL: tuple | None = None


def _image_from(row, attnames: list[str]) -> Image:
    image = Image.from_db("default", attnames, row[:len(attnames)])
    claimer = row[len(attnames)]
    if image.claimed_by_id is not None and claimer is not None:
        image.claimed_by = get_user_model()(pk=image.claimed_by_id, username=claimer)
    return image


# ImageSerializer's fields, rendered here without DRF's per-call field construction (~1 ms).
# If the serializer's field list changes, the hot route stops answering (Django does) until
# this is updated: tests/backend/test_api_hot_paths.py compares the two bodies.
_HEAD_FIELDS = [
    "id", "original_name", "content_type", "sha256", "size_bytes", "width", "height", "status",
    "created_at", "updated_at", "version", "annotation_count", "pending_count", "file_url",
    "thumbnail_url", "claimed_by", "claim_expires_at",
]


def head_matches_serializer() -> bool:
    from backend.images.serializers import ImageSerializer

    return list(ImageSerializer.Meta.fields) == _HEAD_FIELDS


def _head(image: Image, count: int, pending: int, last_event: int) -> bytes:
    from backend.images.claims import active_claimant

    holder = active_claimant(image)
    data = {
        "id": image.pk, "original_name": image.original_name, "content_type": image.content_type,
        "sha256": image.sha256, "size_bytes": image.size_bytes, "width": image.width, "height": image.height,
        "status": image.status, "created_at": drf_datetime(image.created_at), "updated_at": drf_datetime(image.updated_at),
        "version": image.version + last_event, "annotation_count": count, "pending_count": pending,
        "file_url": f"/api/projects/{image.project_id}/images/{image.pk}/file/",
        "thumbnail_url": f"/api/projects/{image.project_id}/images/{image.pk}/thumbnail/?v={image.sha256[:12]}",
        "claimed_by": holder.username if holder else None,
        "claim_expires_at": None if image.claim_expires_at is None else drf_datetime(image.claim_expires_at),
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def render_fragment(row) -> bytes:
    return json.dumps(_rows([row])[0], ensure_ascii=False, separators=(",", ":")).encode()


# The rows query's columns by name (fast_review's names; its one-statement review returns them in
# this order too), the class version after them.
ROW_FIELDS = (
    "id", "image_id", "label_class_id", "class_name", "mask_rle", "bbox", "area", "source", "det_score", "mask_score",
    "class_score", "class_margin", "candidates", "class_review", "mask_review", "job_id", "created_at", "updated_at",
    "version", "det_phrase",
)


def remember(rows) -> dict[int, bytes]:
    """Render and cache the fragments of rows-query rows (ROW_FIELDS + class version): those a
    read fetched, or one a write in this process just returned. Returns {id: fragment}."""
    fresh = {r[0]: (r[18], r[20], render_fragment(r)) for r in rows}
    with _lock:
        for pk, entry in fresh.items():
            _fragments[pk] = entry
            _fragments.move_to_end(pk)
        while len(_fragments) > FRAGMENTS_MAX:
            _fragments.popitem(last=False)
    return {pk: entry[2] for pk, entry in fresh.items()}


async def send_head(conn, project_id: int, image_id: int, condition: str = "", params: dict | None = None):
    """The image row + object versions query's cursor, or None when the hot route cannot answer
    (in a pipeline its row arrives with the next sync). `condition` (SQL, named `params`) is
    ANDed to the query's WHERE: no row then means it did not hold (or no such image)."""
    global _SQL
    if _SQL is None:
        _SQL = _sql() if head_matches_serializer() else ()
    if not _SQL:
        return None
    sql = _SQL[0] if not condition else _with_condition(condition)
    return await conn.execute(sql, {"i": image_id, "p": project_id, **(params or {})})


_CONDITIONED: dict[str, str] = {}


def _with_condition(condition: str) -> str:
    sql = _CONDITIONED.get(condition)
    if sql is None:
        sql = _CONDITIONED[condition] = f"{_SQL[0]} AND {condition}"
    return sql


async def finish_detail(conn, cursor, image_id: int) -> bytes | None:
    """The detail body from send_head's cursor, byte for byte what ImageBundleViewSet.retrieve
    renders; None: no such image in the project, or the serializer changed (Django answers)."""
    if cursor is None:
        return None
    _, rows_sql, attnames = _SQL
    row = await cursor.fetchone()
    if row is None:
        return None
    last_event, ids, versions, classes, pending = row[-5], (row[-4] or []), (row[-3] or []), (row[-2] or []), row[-1]
    count = len(ids)
    image = _image_from(row, attnames)
    parts: dict[int, bytes] = {}
    missing = []
    with _lock:
        for pk, version, class_version in zip(ids, versions, classes):
            hit = _fragments.get(pk)
            if hit is not None and hit[0] == version and hit[1] == class_version:
                parts[pk] = hit[2]
                _fragments.move_to_end(pk)
            else:
                missing.append(pk)
    if missing:
        # A write may land between the two queries: the newer row is served (as the view's two
        # queries would) and cached under its own versions; a row deleted meanwhile is left out.
        parts.update(remember(await (await conn.execute(rows_sql, (image_id, missing))).fetchall()))
        ids = [pk for pk in ids if pk in parts]
    head = _head(image, count, pending, last_event)
    return head[:-1] + b',"annotations":[' + b",".join(parts[pk] for pk in ids) + b"]}"
