"""Spot checks of the scorer's auto-accepts, and how often supervisors agreed with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, func, select

from vot import schema
from vot.db import utcnow
from vot.review.queue import ITEM_COLUMNS, QueueItem, queue_item
from vot.review.scope import Reviewer, in_clinic, scoped

s, sc, p, rv = schema.submissions, schema.scores, schema.patients, schema.reviews


def auto_accepted(
    conn: Connection, reviewer: Reviewer, limit: int = 50, offset: int = 0
) -> list[QueueItem]:
    """Auto-accepted videos, newest first."""
    query = scoped(ITEM_COLUMNS, reviewer, s.c.status == schema.AUTO_ACCEPTED)
    query = query.order_by(s.c.updated_at.desc(), s.c.id.desc()).limit(limit).offset(offset)
    return [queue_item(r) for r in conn.execute(query)]


def spot_check_sample(
    conn: Connection, reviewer: Reviewer, size: int = 10, days: int = 7, now: datetime | None = None
) -> list[QueueItem]:
    """A random sample of the videos auto-accepted in the last ``days`` days, not yet checked."""
    since = (now or utcnow()) - timedelta(days=days)
    query = scoped(
        ITEM_COLUMNS, reviewer, s.c.status == schema.AUTO_ACCEPTED, s.c.updated_at >= since
    )
    return [queue_item(r) for r in conn.execute(query.order_by(func.random()).limit(size))]


@dataclass(frozen=True)
class Agreement:
    checked: int  # auto-accepts a supervisor looked at
    agreed: int  # ... and accepted too

    @property
    def rate(self) -> float | None:
        return self.agreed / self.checked if self.checked else None

    @property
    def overturned(self) -> int:
        return self.checked - self.agreed


def agreement(conn: Connection, reviewer: Reviewer, since: datetime | None = None) -> Agreement:
    """How often supervisors agreed with the scorer's auto-accepts they spot-checked."""
    query = (
        select(func.count(), func.count(case((rv.c.verdict == "accept", 1))))
        .select_from(rv.join(s, s.c.id == rv.c.submission_id).join(p, p.c.id == s.c.patient_id))
        .where(rv.c.previous_status == schema.AUTO_ACCEPTED, rv.c.undone_at.is_(None))
    )
    query = in_clinic(query, reviewer)
    if since is not None:
        query = query.where(rv.c.created_at >= since)
    checked, agreed = conn.execute(query).one()
    return Agreement(int(checked), int(agreed))
