"""Deleting a submission's stored objects, shared by retention and erasure.

Both delete the objects first and record the deletion after, so a run cut short is finished by
the next one, and a re-run is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select
from sqlalchemy.sql import ColumnElement

from vot import schema
from vot.storage import Storage, keys

DECIDED = (schema.ACCEPTED, schema.AUTO_ACCEPTED, schema.REJECTED, schema.UNCLEAR)
s = schema.submissions


def remove(storage: Storage, names: Iterable[str], prefix: str | None, dry_run: bool) -> int:
    """Delete the objects ``names`` and everything under ``prefix``; how many were there."""
    count = 0
    for key in dict.fromkeys(names):  # unique, in order
        if storage.exists(key):
            count += 1
            if not dry_run:
                storage.delete(key)
        elif not dry_run:
            storage.delete(key)  # idempotent; covers a store that is slow to show a write
    if prefix is not None and not dry_run:
        count += storage.delete_prefix(prefix)
    return count


def remove_derived(
    storage: Storage, sub_id: int, stored: Iterable[str | None], dry_run: bool = False
) -> int:
    """Delete the review copy, poster and stills of ``sub_id``: the keys its row names
    (``stored``) and the ones the transcoder writes, in case the row was not updated yet."""
    names = [k for k in stored if k] + list(keys.derived(sub_id))
    return remove(storage, names, keys.stills(sub_id), dry_run)


def raw_needed_elsewhere(
    conn: Connection, raw_key: str, sub_id: int, still_needed: Sequence[ColumnElement[bool]]
) -> bool:
    """Whether another submission still needs the raw bytes under ``raw_key``.

    Raw keys are content-addressed: the same file sent for two doses (or by two patients) is
    one object.
    """
    query = select(s.c.id).where(
        s.c.raw_key == raw_key, s.c.id != sub_id, s.c.raw_deleted_at.is_(None), *still_needed
    )
    return conn.execute(query.limit(1)).first() is not None
