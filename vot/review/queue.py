"""The review queue, read side: waiting videos ranked by confidence, filters, paging, counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql import ColumnElement

from vot import schema
from vot.review.scope import (
    Reviewer,
    ReviewError,
    aware,
    in_clinic,
    newest,
    ranked,
    reasons_contain,
    scoped,
)

ORDERS = ("likely", "doubtful")  # most likely taken first, or most doubtful first

# The scorer's reason codes in words a supervisor can act on; unknown codes are shown humanised.
REASON_TEXT = {
    "no_face": "No face seen: the scorer cannot tell who took the dose.",
    "multiple_people": "More than one person is in the video.",
    "face_cut_off": "The face is partly out of the frame.",
    "too_dark": "The video is too dark to see the pill.",
    "blurry": "The video is blurry.",
    "too_short": "The video is very short.",
    "face_too_small": "The face is too small to see the pill go in.",
    "low_confidence": "No pill-to-mouth movement was seen.",
    "uncertain": "A hand came near the mouth, but the scorer could not be sure.",
    "replayed": "The same recording as an earlier video: compare the two below.",
}

s, sc, p, rv = schema.submissions, schema.scores, schema.patients, schema.reviews


@dataclass(frozen=True)
class QueueFilters:
    patient_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    reason: str | None = None
    order: str = "likely"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ReviewError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.reason is not None and not self.reason.replace("_", "").isalnum():
            raise ReviewError(f"unknown reason {self.reason!r}")


@dataclass(frozen=True)
class QueueItem:
    submission_id: int
    patient_id: int
    patient_code: str
    dose_date: date
    status: str
    received_at: datetime
    confidence: float | None
    decision: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Counts:
    waiting: int
    done_today: int
    auto_today: int


def reason_text(code: str) -> str:
    """The scorer's reason ``code`` in plain words."""
    return REASON_TEXT.get(code) or code.replace("_", " ").capitalize() + "."


# Unscored videos (none expected in review) rank as least likely instead of vanishing.
_rank = func.coalesce(newest("confidence"), -1.0)
ITEM_COLUMNS = (
    s.c.id,
    s.c.patient_id,
    p.c.code,
    s.c.dose_date,
    s.c.status,
    s.c.received_at,
    sc.c.confidence,
    sc.c.decision,
    sc.c.reasons,
)


def _filter(f: QueueFilters) -> list[ColumnElement[bool]]:
    where = [s.c.status == schema.REVIEW]
    if f.patient_code:
        where.append(s.c.patient_id.in_(select(p.c.id).where(p.c.code == f.patient_code)))
    if f.date_from:
        where.append(s.c.dose_date >= f.date_from)
    if f.date_to:
        where.append(s.c.dose_date <= f.date_to)
    if f.reason:
        where.append(reasons_contain(f.reason))
    return where


def queue_item(row: Any) -> QueueItem:
    """A row of :data:`ITEM_COLUMNS` as a :class:`QueueItem`."""
    return QueueItem(
        row.id,
        row.patient_id,
        row.code,
        row.dose_date,
        row.status,
        aware(row.received_at),
        row.confidence,
        row.decision,
        tuple(row.reasons or ()),
    )


def _items(conn: Connection, reviewer: Reviewer, ids: Sequence[int]) -> list[QueueItem]:
    """Queue items for ``ids``, in that order."""
    rows = (
        {r.id: queue_item(r) for r in conn.execute(scoped(ITEM_COLUMNS, reviewer, s.c.id.in_(ids)))}
        if ids
        else {}
    )
    return [rows[i] for i in ids if i in rows]


def queue(
    conn: Connection,
    reviewer: Reviewer,
    filters: QueueFilters = QueueFilters(),
    limit: int = 50,
    offset: int = 0,
) -> list[QueueItem]:
    """One page of videos waiting for a person, ranked by the scorer's confidence."""
    order = _rank.desc() if filters.order == "likely" else _rank.asc()
    page = ranked([s.c.id], reviewer, *_filter(filters), by_reason=bool(filters.reason))
    page = page.order_by(order, s.c.id)
    ids = conn.execute(page.limit(limit).offset(offset)).scalars().all()
    return _items(conn, reviewer, ids)


def queue_size(conn: Connection, reviewer: Reviewer, filters: QueueFilters = QueueFilters()) -> int:
    """How many videos wait for a person under ``filters``."""
    count = ranked([func.count()], reviewer, *_filter(filters), by_reason=bool(filters.reason))
    return int(conn.execute(count).scalar_one())


def neighbour(
    conn: Connection, reviewer: Reviewer, filters: QueueFilters, sub_id: int, step: int = 1
) -> int | None:
    """The waiting video after (``step`` > 0) or before ``sub_id`` in queue order, if any.

    Works for a video that has just left the queue too, so a verdict can move on from it.
    """
    conf = conn.execute(select(_rank).select_from(s).where(s.c.id == sub_id)).scalar()
    if conf is None:
        return None
    forward = step > 0
    down = (filters.order == "likely") == forward  # walking towards lower confidence
    # Rank once per row in a fenced subquery (OFFSET 0): inlined, PostgreSQL would run the
    # score lookup once for each of the three places the rank is compared and sorted.
    rows = ranked(
        [s.c.id, _rank.label("rank")], reviewer, *_filter(filters), by_reason=bool(filters.reason)
    )
    q = rows.offset(0).subquery()
    beyond = q.c.rank < conf if down else q.c.rank > conf
    tie = q.c.id > sub_id if forward else q.c.id < sub_id
    query = select(q.c.id).where(or_(beyond, and_(q.c.rank == conf, tie)))
    query = query.order_by(
        q.c.rank.desc() if down else q.c.rank.asc(), q.c.id.asc() if forward else q.c.id.desc()
    )
    return conn.execute(query.limit(1)).scalar()


def next_after(
    conn: Connection, reviewer: Reviewer, filters: QueueFilters, sub_id: int
) -> int | None:
    """Where to go after deciding ``sub_id``: the next waiting video, wrapping to the first."""
    found = neighbour(conn, reviewer, filters, sub_id, 1)
    if found is None:
        first = queue(conn, reviewer, filters, limit=1)
        found = first[0].submission_id if first else None
    return found


def counts(conn: Connection, reviewer: Reviewer, since: datetime) -> Counts:
    """Waiting now, decided by people since ``since``, and auto-accepted since ``since``."""
    waiting = queue_size(conn, reviewer)
    done = (
        select(func.count())
        .select_from(rv.join(s, s.c.id == rv.c.submission_id).join(p, p.c.id == s.c.patient_id))
        .where(rv.c.created_at >= since, rv.c.undone_at.is_(None))
    )
    auto = (
        select(func.count())
        .select_from(s.join(p, p.c.id == s.c.patient_id))
        .where(s.c.status == schema.AUTO_ACCEPTED, s.c.updated_at >= since)
    )
    done, auto = in_clinic(done, reviewer), in_clinic(auto, reviewer)
    return Counts(
        int(waiting), int(conn.execute(done).scalar_one()), int(conn.execute(auto).scalar_one())
    )
