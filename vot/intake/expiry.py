"""Expiry of abandoned uploads, of finished ones past keeping, and of stray files."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from vot import schema
from vot.config import Settings
from vot.db import as_utc, utcnow
from vot.intake.uploads import Busy, UploadNotFound, remove

logger = logging.getLogger(__name__)
u = schema.uploads

EXPIRE_AFTER = timedelta(days=1)  # an unfinished upload idle this long is abandoned
KEEP_FINISHED = timedelta(days=7)  # a resumed client can still learn how its upload ended


def expire_uploads(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Remove unfinished uploads idle for :data:`EXPIRE_AFTER` and their bytes; returns how many.

    Also forgets finished uploads after :data:`KEEP_FINISHED`, and removes stray files that no
    upload owns (a crash between writing a file and its row). Safe to call from several
    processes at once; the web app calls it every few minutes, and a sweeper may too.
    """
    now = now or utcnow()
    with engine.connect() as conn:
        rows = conn.execute(
            select(u.c.id, u.c.submission_id, u.c.error, u.c.updated_at).where(
                u.c.updated_at < now - EXPIRE_AFTER
            )
        ).all()
    expired = 0
    for row in rows:
        finished = row.submission_id is not None or row.error is not None
        if finished and as_utc(row.updated_at) >= now - KEEP_FINISHED:  # type: ignore[operator]
            continue
        try:
            remove(engine, settings, row.id)
        except (Busy, UploadNotFound):
            continue  # in use right now, or another process removed it first
        expired += 0 if finished else 1
    folder = settings.data_dir / "uploads"
    cutoff = (now - EXPIRE_AFTER).timestamp()
    for path in folder.iterdir() if folder.is_dir() else ():
        with engine.connect() as conn:
            owner = path.name.split(".", 1)[0]
            owned = conn.execute(select(u.c.id).where(u.c.id == owner)).first()
        if owned is None and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            expired += 1
    if expired:
        logger.info("expired %s unfinished upload(s)", expired)
    return expired
