"""Many rows of one model in one statement, with values sent in PostgreSQL's binary form.

insert_many: new rows by binary COPY instead of Django's bulk_create. update_many: changed
columns of many rows in one UPDATE over arrays instead of a save() each. read_vectors: pgvector
columns read in binary instead of parsed from text.

bulk_create sends one INSERT whose every value psycopg first writes out as an SQL literal on the
client (Django's cursors bind client-side), and PostgreSQL then parses that text back. For a
job's proposals that is most of the write: a 1024-float DINOv3 embedding is ~12 KB of decimal
text, ~1.2 ms of Python per row to format (pgvector's text form) before any escaping and parsing;
measured, 32 small rows spent ~11 ms in the round trip for 0.7 ms of execution. Binary COPY sends
each value in PostgreSQL's wire form (a vector is 4 bytes a float) and parses nothing.

Same contract as bulk_create for what the callers use: every object gets its primary key (drawn
from the table's own sequence first, in the objects' order), auto_now / auto_now_add fields are
filled as Django fills them, and the objects come back marked as saved. Runs on Django's
connection, so inside the caller's transaction. Signals are not sent (bulk_create sends none).
"""
from __future__ import annotations

import weakref

import psycopg
from django.db import connections
from django.utils import timezone
from pgvector import Vector
from pgvector.django import VectorField
from pgvector.psycopg.vector import VectorBinaryDumper, VectorBinaryLoader

# Below this many rows the ORM's one statement per call (an INSERT; a save() per row) costs less
# than the sequence query plus the COPY, or than building the arrays.
BULK_MIN_ROWS = 8


def insert_many(model, objs: list, *, using: str = "default", keys: bool = True) -> list:
    """bulk_create(objs) for few rows, binary COPY for many. Returns objs with their keys;
    keys=False: the objects the caller drops at once (an audit trail) keep pk None when copied,
    and the table's default draws the keys (one round trip less)."""
    if len(objs) < BULK_MIN_ROWS:
        return model.objects.using(using).bulk_create(objs)
    return copy_insert(model, objs, using=using, keys=keys)


def copy_insert(model, objs: list, *, using: str = "default", keys: bool = True) -> list:
    """objs as new rows by one binary COPY (keys from the table's sequence first, in the objects'
    order; keys=False: by the table's default, in the same order, not set on objs); returns objs."""
    if not objs:
        return objs
    connection = connections[using]
    meta = model._meta
    pk = meta.pk
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if keys:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(objs)],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
        types, vector_oid = _types(cursor, meta.db_table)
        rows = []
        for index, obj in enumerate(objs):
            row = []
            if keys:
                setattr(obj, pk.attname, ids[index])
                row.append(ids[index])
            for field in fields:
                value = field.pre_save(obj, add=True)  # auto_now(_add) are set here, as in bulk_create
                if isinstance(field, VectorField):
                    row.append(None if value is None else Vector(value))
                else:
                    row.append(field.get_db_prep_save(value, connection))
            rows.append(row)
        columns = ([pk.column] if keys else []) + [f.column for f in fields]
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no COPY
        if vector_oid is not None:
            # On this cursor only: the connection's other queries keep their adapters.
            raw.adapters.register_dumper(Vector, type("VectorDumper", (VectorBinaryDumper,), {"oid": vector_oid}))
        sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN (FORMAT BINARY)"
        with raw.copy(sql) as copy:
            copy.set_types([types[c] for c in columns])
            for row in rows:
                copy.write_row(row)
    if keys:  # without its key an object is not one Django could save again
        for obj in objs:
            obj._state.adding = False
            obj._state.db = using
    return objs


# psycopg connection -> {table: its types}. Kept per connection, not per process: an oid cached
# per process would go stale if the database were re-created under a running worker, while a
# connection does not outlive its database. One catalog round trip less per COPY.
_TYPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _types(cursor, table: str) -> tuple[dict[str, int], int | None]:
    """{column: type oid} of the table, and pgvector's type oid if a column has it."""
    known = _TYPES.setdefault(cursor.cursor.connection, {})
    if table not in known:
        known[table] = _catalog_types(cursor, table)
    return known[table]


def _catalog_types(cursor, table: str) -> tuple[dict[str, int], int | None]:
    cursor.execute(
        "SELECT a.attname, a.atttypid, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        [table],
    )
    types, vector_oid = {}, None
    for name, oid, type_name in cursor.fetchall():
        types[name] = oid
        if type_name == "vector":
            vector_oid = oid
    return types, vector_oid


def update_many(model, objs: list, columns: list[str], *, using: str = "default") -> None:
    """save(update_fields=columns) for each of objs, in ONE statement: UPDATE ... FROM unnest of
    one typed array per column, bound server-side (a save() each was a round trip and ~1.9 ms of
    ORM work per row: re-scoring wrote ~430 objects a second). auto_now columns among `columns`
    are set to now, as save() sets them. Few rows, or a vector column, take save() each."""
    fields = [model._meta.get_field(name) for name in columns]
    if len(objs) < BULK_MIN_ROWS or any(isinstance(f, VectorField) for f in fields):
        for obj in objs:
            obj.save(update_fields=columns, using=using)
        return
    connection = connections[using]
    now = timezone.now()
    pk = model._meta.pk
    arrays = [[getattr(obj, pk.attname) for obj in objs]]
    for field in fields:
        if getattr(field, "auto_now", False):
            for obj in objs:
                setattr(obj, field.attname, now)
        arrays.append([field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs])
    quote = connection.ops.quote_name
    names = [pk.column] + [f.column for f in fields]
    types = [pk.db_type(connection)] + [f.db_type(connection) for f in fields]
    sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
    unnest = ", ".join(f"%b::{t}[]" for t in types)  # binary: text arrays escape every element by regex
    sql = (f"UPDATE {quote(model._meta.db_table)} AS t SET {sets} FROM unnest({unnest}) AS v({', '.join(quote(n) for n in names)}) "
           f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}")
    connection.ensure_connection()
    # psycopg's own server-binding cursor: Django's would inline every array element as SQL text.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, arrays)


def read_vectors(model, column: str, ids: list[int], *, using: str = "default") -> dict:
    """{pk: float32 numpy array (None for NULL)} of a pgvector column, read in binary (the ORM
    parses each vector's decimal text: ~0.5 ms per 1024 floats)."""
    if not ids:
        return {}
    connection = connections[using]
    quote = connection.ops.quote_name
    pk = model._meta.pk.column
    with connection.cursor() as django_cursor:  # opens the connection psycopg's cursor below uses
        django_cursor.execute("SELECT 'vector'::regtype::oid")
        oid = django_cursor.fetchone()[0]
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_loader(oid, VectorBinaryLoader)  # on this cursor only
        cursor.execute(f"SELECT {quote(pk)}, {quote(column)} FROM {quote(model._meta.db_table)} WHERE {quote(pk)} = ANY(%s)",
                       [list(ids)], binary=True)
        return {key: None if value is None else value.to_numpy() for key, value in cursor.fetchall()}
