"""core/bulk_sql: many new rows in one binary COPY write what bulk_create writes (every column,
the embedding bit for bit), and apply_changes takes that path for a job's or an import's many
objects."""
import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from backend.annotations.changes import Create, apply_changes
from backend.annotations.models import Annotation, AnnotationEvent, ChangeSource
from backend.core.bulk_sql import BULK_MIN_ROWS, copy_insert

from .factories import make_class, make_image, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


def _fields(image, label, i: int) -> dict:
    rng = np.random.default_rng(i)
    return {
        "project_id": image.project_id, "image_id": image.pk, "label_class": label if i % 3 else None,
        "mask_rle": rect_rle(48, 64, 1, 1, 10 + i, 12), "bbox": [1.0, 1.0, 9.0 + i, 11.0], "area": 99 + i,
        "det_score": 0.25 + i / 100, "mask_score": 0.5, "class_score": None if i % 2 else 0.125,
        "class_margin": 0.1, "candidates": [{"class_id": getattr(label, "pk", None), "name": "Молоток \"№1\"", "score": 0.3}],
        "embedding": None if i == 0 else rng.standard_normal(1024).astype(np.float32).tolist(),
        "embedder_version": "dinov3|x", "det_phrase": "a 'hammer'\\n\t", "source": "model",
    }


COLUMNS = ["project_id", "image_id", "label_class_id", "mask_rle", "bbox", "area", "det_score", "mask_score",
           "class_score", "class_margin", "candidates", "embedder_version", "det_phrase", "source", "class_review",
           "mask_review", "version", "job_id", "created_by_id", "updated_by_id"]


def test_copy_writes_every_column_as_bulk_create_does():
    owner = make_user("owner")
    project = make_project(owner)
    label = make_class(project, "hammer")
    image = make_image(project)
    n = BULK_MIN_ROWS + 3
    copied = copy_insert(Annotation, [Annotation(**_fields(image, label, i)) for i in range(n)])
    inserted = Annotation.objects.bulk_create([Annotation(**_fields(image, label, i)) for i in range(n)])
    ids = [a.pk for a in copied]
    assert ids == sorted(ids) and len(set(ids)) == n and all(not a._state.adding for a in copied)
    assert max(ids) < min(a.pk for a in inserted), "keys come from the table's own sequence"
    by_copy = {a.pk: a for a in Annotation.objects.filter(pk__in=ids)}
    by_insert = {a.pk: a for a in Annotation.objects.filter(pk__in=[a.pk for a in inserted])}
    for one, other, given in zip(copied, inserted, range(n)):
        mine, theirs = by_copy[one.pk], by_insert[other.pk]
        assert {c: getattr(mine, c) for c in COLUMNS} == {c: getattr(theirs, c) for c in COLUMNS}
        if given == 0:
            assert mine.embedding is None
        else:
            assert np.array_equal(np.asarray(mine.embedding, np.float32), np.asarray(theirs.embedding, np.float32))
            assert np.array_equal(np.asarray(mine.embedding, np.float32), np.asarray(_fields(image, label, given)["embedding"], np.float32))
        assert mine.created_at == one.created_at and mine.updated_at == one.updated_at is not None


def test_copy_is_part_of_the_callers_transaction():
    owner = make_user("owner")
    image = make_image(make_project(owner))
    before = Annotation.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        copy_insert(Annotation, [Annotation(**_fields(image, None, i)) for i in range(BULK_MIN_ROWS)])
        assert Annotation.objects.count() == before + BULK_MIN_ROWS
        raise RuntimeError("roll back")
    assert Annotation.objects.count() == before


def test_many_created_objects_and_their_events_go_by_copy():
    owner = make_user("owner")
    project = make_project(owner)
    label = make_class(project, "hammer")
    image = make_image(project)
    changes = [Create(image.pk, {k: v for k, v in _fields(image, label, i).items() if k not in ("project_id", "image_id")})
               for i in range(BULK_MIN_ROWS)]
    with CaptureQueriesContext(connection) as queries:
        applied = apply_changes(project_id=project.pk, changes=changes, actor=None, source=ChangeSource.MODEL)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert inserts == [], "bulk_create's literal INSERTs were sent"
    # Keys are drawn first for the objects (the caller gets them), not for their events.
    assert len([q for q in queries.captured_queries if "nextval" in q["sql"]]) == 1
    assert len(applied.created) == BULK_MIN_ROWS
    events = AnnotationEvent.objects.filter(annotation_id__in=[a.pk for a in applied.created], action="created")
    assert events.count() == BULK_MIN_ROWS
    first = events.get(annotation_id=applied.created[1].pk)
    assert first.after["candidates"][0]["name"] == "Молоток \"№1\"" and first.after["version"] == 1
    assert first.source == "model" and first.actor_id is None and first.created_at is not None


def test_copy_without_keys_lets_the_table_draw_them_in_order():
    """keys=False (the audit trail, which nothing reads back in the writing call): no sequence
    query first; the rows get the table's own keys, in the objects' order."""
    owner = make_user("owner")
    image = make_image(make_project(owner))
    objs = [Annotation(**_fields(image, None, i)) for i in range(BULK_MIN_ROWS)]
    before = Annotation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with CaptureQueriesContext(connection) as queries:
        copy_insert(Annotation, objs, keys=False)
    assert [q["sql"] for q in queries.captured_queries if "nextval" in q["sql"]] == []
    assert all(a.pk is None for a in objs)
    rows = list(Annotation.objects.filter(pk__gt=before).order_by("pk").values_list("area", "det_score"))
    assert rows == [(f["area"], f["det_score"]) for f in (_fields(image, None, i) for i in range(BULK_MIN_ROWS))]


def test_update_many_writes_what_a_save_each_writes():
    from backend.core.bulk_sql import update_many

    owner = make_user("owner")
    project = make_project(owner)
    label = make_class(project, "hammer")
    image = make_image(project)
    n = BULK_MIN_ROWS + 2
    batch = copy_insert(Annotation, [Annotation(**_fields(image, label, i)) for i in range(n)])
    each = copy_insert(Annotation, [Annotation(**_fields(image, label, i)) for i in range(n)])
    columns = ["label_class", "class_score", "class_margin", "candidates", "version", "updated_at"]
    for rows in (batch, each):
        for i, a in enumerate(rows):
            a.label_class = None if i % 2 else label
            a.class_score = None if i % 3 == 0 else 0.1 + i
            a.class_margin = None  # a column that is NULL in every row
            a.candidates = [{"class_id": label.pk, "name": "Клещи \"{x}\" \\ ,", "score": 1 / (i + 3)}]
            a.version += 1
    old = Annotation.objects.get(pk=batch[0].pk).updated_at
    update_many(Annotation, batch, columns)
    for a in each:
        a.save(update_fields=columns)
    names = ["label_class_id", "class_score", "class_margin", "candidates", "version", "mask_rle", "det_phrase"]
    got = {a.pk: a for a in Annotation.objects.filter(pk__in=[a.pk for a in batch])}
    want = {a.pk: a for a in Annotation.objects.filter(pk__in=[a.pk for a in each])}
    for mine, theirs in zip(batch, each):
        assert {c: getattr(got[mine.pk], c) for c in names} == {c: getattr(want[theirs.pk], c) for c in names}
        assert got[mine.pk].updated_at == mine.updated_at > old  # auto_now, as save() sets it
    assert got[batch[1].pk].label_class_id is None and got[batch[2].pk].label_class_id == label.pk


def test_read_vectors_is_the_stored_floats_bit_for_bit():
    from backend.core.bulk_sql import read_vectors

    owner = make_user("owner")
    image = make_image(make_project(owner))
    rows = copy_insert(Annotation, [Annotation(**_fields(image, None, i)) for i in range(BULK_MIN_ROWS)])
    vectors = read_vectors(Annotation, "embedding", [a.pk for a in rows])
    assert vectors[rows[0].pk] is None
    for i, a in enumerate(rows[1:], start=1):
        assert vectors[a.pk].dtype == np.float32
        assert np.array_equal(vectors[a.pk], np.asarray(_fields(image, None, i)["embedding"], np.float32))


def test_many_updated_objects_take_one_statement_and_keep_their_events():
    from backend.annotations.changes import Update

    owner = make_user("owner")
    project = make_project(owner)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    image = make_image(project)
    rows = copy_insert(Annotation, [Annotation(**_fields(image, hammer, i)) for i in range(1, BULK_MIN_ROWS + 1)])
    changes = [Update(a, {"label_class": wrench, "class_score": 0.5, "candidates": []}, "rescored") for a in rows]
    with CaptureQueriesContext(connection) as queries:
        applied = apply_changes(project_id=project.pk, changes=changes, actor=None, source=ChangeSource.RESCORE)
    assert [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "annotations_annotation"')] == []
    assert len(applied.updated) == BULK_MIN_ROWS
    for a in Annotation.objects.filter(pk__in=[a.pk for a in rows]):
        assert (a.label_class_id, a.class_score, a.candidates, a.version) == (wrench.pk, 0.5, [], 2)
    events = AnnotationEvent.objects.filter(annotation_id__in=[a.pk for a in rows], action="rescored")
    assert sorted(e.after["label_class"] for e in events) == [wrench.pk] * BULK_MIN_ROWS
    assert {e.before["version"] for e in events} == {1}


def test_a_gallery_loads_its_exemplar_and_negative_vectors_bit_for_bit():
    from backend.gallery.models import GalleryEmbedding, GalleryImage, HardNegative
    from backend.jobs.gallery_index import load_gallery

    owner = make_user("owner")
    project = make_project(owner)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    rng = np.random.default_rng(7)
    stored, exemplars = {}, []
    for k, label in enumerate([hammer, wrench, hammer, wrench]):
        crop = GalleryImage.objects.create(project=project, label_class=label, file=f"g/{k}.png", original_name=f"{k}.png",
                                           content_type="image/png", sha256=f"{k:064d}", width=8, height=8)
        stored[crop.pk] = rng.standard_normal(1024).astype(np.float32)
        GalleryEmbedding.objects.create(gallery_image=crop, embedder_version="v", vector=stored[crop.pk].tolist())
        exemplars.append(crop)
    negative = HardNegative.objects.create(project=project, label_class=wrench, crop=exemplars[0])
    gallery = load_gallery(project_id=project.pk, embedder_version="v", exemplar_ids=[c.pk for c in exemplars[1:]],
                           negative_ids=[negative.pk])
    from ml.vectors import l2_normalize

    assert list(gallery.exemplar_ids) == [c.pk for c in exemplars[1:]]
    assert list(gallery.labels) == [str(c.label_class_id) for c in exemplars[1:]]
    assert gallery.embeddings.dtype == np.float32
    assert np.array_equal(gallery.embeddings, l2_normalize(np.stack([stored[c.pk] for c in exemplars[1:]])))
    assert list(gallery.negatives.labels) == [str(wrench.pk)]
    assert np.array_equal(gallery.negatives.embeddings, l2_normalize(stored[exemplars[0].pk][None]))


@pytest.mark.django_db(transaction=True)
def test_column_types_are_asked_once_per_connection():
    """The table's column types are read from the catalog on a connection's first COPY into it
    and kept with that connection only: a new connection (to a re-created database, say) asks
    again."""
    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    label = make_class(project, "hammer")

    def catalog_queries() -> int:
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            copy_insert(Annotation, [Annotation(**_fields(image, label, i)) for i in range(BULK_MIN_ROWS)])
        return sum("pg_attribute" in q["sql"] for q in queries.captured_queries)

    assert catalog_queries() in (0, 1)
    assert catalog_queries() == 0
    connection.close()
    assert catalog_queries() == 1
