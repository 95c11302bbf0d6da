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

from backend.core import fast_auth
from backend.core.hot_asgi import drf_datetime
from backend.images.models import Image
from backend.projects.access import ROLE_CAPABILITIES, Capability, member_sql, roles_with
from backend.projects.models import LabelClass, Membership

from . import changes
from .models import Annotation, AnnotationEvent, ChangeSource, ReviewState, Source

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


# The plain review in ONE autocommit statement: lock the row, check every rule in the WHERE, update
# it and insert its event (a data-modifying CTE), return the after-state with the old review
# values. It applies only when the image's review status cannot move (the row's (settled,
# started) flags stay as they were, see changes.review_flags); zero rows back means "not the plain
# case" (a refusal, a no-op, a status change) and review() below takes over, unchanged. One round
# trip and one commit instead of BEGIN, SELECT ... FOR UPDATE, UPDATE, INSERT, COMMIT.
_ONE_SQL: dict[str, str] = {}


def _one_sql(caller_check: str) -> str:
    a, i = Annotation._meta.db_table, Image._meta.db_table
    lc, e = LabelClass._meta.db_table, AnnotationEvent._meta.db_table
    snapshot = ", ".join(f"'{k}', {v}" for k, v in (
        ("label_class", "u.label_class_id"), ("mask_rle", "u.mask_rle"), ("bbox", "u.bbox"), ("area", "u.area"),
        ("class_score", "u.class_score"), ("candidates", "u.candidates"),
    ))
    # Parameters, by name: p project, a annotation, u user, v version, cr / mr the new class /
    # mask review (NULL: unchanged), roles (may review), accept_class, now, action, source.
    return (
        f"WITH u AS (UPDATE {a} t SET class_review = coalesce(%(cr)s, t.class_review), "
        "mask_review = coalesce(%(mr)s, t.mask_review), version = t.version + 1, updated_at = %(now)s, "
        "updated_by_id = %(u)s "
        f"FROM (SELECT o.id, o.class_review AS old_cr, o.mask_review AS old_mr, o.updated_by_id AS old_by FROM {a} o "
        "WHERE o.id = %(a)s AND o.project_id = %(p)s FOR UPDATE) old, "
        f"{i} img "
        "WHERE t.id = old.id AND img.id = t.image_id AND t.version = %(v)s "
        f"AND {member_sql('roles')} "
        f"{caller_check}"
        "AND (img.claimed_by_id IS NULL OR img.claimed_by_id = %(u)s OR img.claim_expires_at IS NULL "
        "OR img.claim_expires_at <= %(now)s) "
        "AND NOT (%(accept_class)s AND t.label_class_id IS NULL) "
        # not a no-op
        "AND (coalesce(%(cr)s, old.old_cr), coalesce(%(mr)s, old.old_mr)) IS DISTINCT FROM (old.old_cr, old.old_mr) "
        # the image's status cannot move: started already (the new row always is), settled unchanged
        "AND (old.old_cr <> %(pending)s OR old.old_mr <> %(pending)s OR t.source = %(human)s OR old.old_by IS NOT NULL) "
        "AND ((old.old_cr <> %(pending)s AND old.old_mr <> %(pending)s) = "
        "(coalesce(%(cr)s, old.old_cr) <> %(pending)s AND coalesce(%(mr)s, old.old_mr) <> %(pending)s)) "
        "RETURNING t.id, t.image_id, t.label_class_id, t.mask_rle, t.bbox, t.area, t.source, t.det_score, "
        "t.det_phrase, t.mask_score, t.class_score, t.class_margin, t.candidates, t.class_review, t.mask_review, "
        "t.job_id, t.created_at, t.updated_at, t.version, old.old_cr, old.old_mr), "
        f"ev AS (INSERT INTO {e} (project_id, image_id, annotation_id, actor_id, action, source, before, after, created_at) "
        "SELECT %(p)s, u.image_id, u.id, %(u)s, %(action)s, %(source)s, "
        f"jsonb_build_object({snapshot}, 'class_review', u.old_cr, 'mask_review', u.old_mr, 'version', u.version - 1), "
        f"jsonb_build_object({snapshot}, 'class_review', u.class_review, 'mask_review', u.mask_review, 'version', u.version), "
        "%(now)s FROM u) "
        # detail_cache.ROW_FIELDS' order, so the row is also the object's cached fragment
        "SELECT u.id, u.image_id, u.label_class_id, lc.name, u.mask_rle, u.bbox, u.area, u.source, u.det_score, "
        "u.mask_score, u.class_score, u.class_margin, u.candidates, u.class_review, u.mask_review, u.job_id, "
        "u.created_at, u.updated_at, u.version, u.det_phrase, coalesce(lc.version, 0) "
        f"FROM u LEFT JOIN {lc} lc ON lc.id = u.label_class_id"
    )


_REVIEWERS = roles_with(Capability.REVIEW)


async def review_in_one_statement(conn, *, project_id: int, annotation_id: int, user_id: int, version: int, target: str,
                                  decision: str, proof: fast_auth.Proof | None = None) -> dict | None:
    """The plain review as one statement (see _ONE_SQL); None: not the plain case, nothing written.
    With a proof (core/fast_auth.Proof) the statement also checks who is calling, so the caller
    need not be looked up first; without one, the caller has been."""
    caller_check = f"AND {proof.sql('%(u)s')} " if proof is not None else ""
    sql = _ONE_SQL.get(caller_check)
    if sql is None:
        sql = _ONE_SQL[caller_check] = _one_sql(caller_check)
    params = {
        "p": project_id, "a": annotation_id, "u": user_id, "v": version, "roles": _REVIEWERS,
        "cr": decision if target in {"class", "both"} else None,
        "mr": decision if target in {"mask", "both"} else None,
        "accept_class": decision == ReviewState.ACCEPTED and target in {"class", "both"},
        "now": timezone.now(), "action": AnnotationEvent.Action.REVIEWED.value, "source": ChangeSource.HUMAN.value,
        "pending": ReviewState.PENDING.value, "human": Source.HUMAN.value,
        **(proof.params if proof is not None else {}),
    }
    found = await (await conn.execute(sql, params)).fetchone()
    if found is None:
        return None
    from . import detail_cache

    row = dict(zip(detail_cache.ROW_FIELDS, found))
    # This process's next image read finds the object's new JSON ready (detail_cache's key is
    # the versions, so a later write anywhere simply replaces it).
    detail_cache.remember([found])
    changes.publish(project_id, [changes.reviewed_notice(row["image_id"], row["id"], row["version"])])
    return _serialized(row)


def _serialized(row: dict) -> dict:
    """AnnotationSerializer's fields, in its order."""
    return {
        "id": row["id"], "image": row["image_id"], "label_class": row["label_class_id"], "class_name": row["class_name"],
        "mask_rle": row["mask_rle"], "bbox": row["bbox"], "area": row["area"], "source": row["source"],
        "det_score": row["det_score"], "det_phrase": row["det_phrase"], "mask_score": row["mask_score"],
        "class_score": row["class_score"], "class_margin": row["class_margin"], "candidates": row["candidates"],
        "class_review": row["class_review"], "mask_review": row["mask_review"], "job_id": row["job_id"],
        "created_at": drf_datetime(row["created_at"]), "updated_at": drf_datetime(row["updated_at"]), "version": row["version"],
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
