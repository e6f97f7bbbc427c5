"""Supervisor review: the queue, verdicts, undo, bulk accept, spot checks and the calendar.

Plain functions over a connection; the caller owns the transaction (``engine.begin()``) so a
verdict, its review row and its audit entry commit together. Every function takes the
:class:`Reviewer` whose clinic bounds what it sees: a supervisor sees their own clinic's
patients, an admin every clinic, an analyst nothing here (``PermissionError``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, and_, case, cast, func, not_, or_, select
from sqlalchemy.sql import ColumnElement, Select

from vot import adherence, schema
from vot.db import as_utc, audit, utcnow
from vot.retention import VideoState, video_state
from vot.triage import BLOCKS_AUTO_ACCEPT

logger = logging.getLogger(__name__)

VERDICTS = {"accept": schema.ACCEPTED, "reject": schema.REJECTED, "unclear": schema.UNCLEAR}
REJECT_REASONS = ("pill not seen", "not the patient", "video unclear", "other")
UNCLEAR_REASON = "ask the patient to record again"
BULK_REASON = "bulk accept: confidence at least {:.2f}"
ORDERS = ("likely", "doubtful")  # most likely taken first, or most doubtful first
DECIDABLE = (schema.REVIEW, schema.AUTO_ACCEPTED)
PENDING = (schema.REVIEW, *schema.PROCESSING_STATUSES)
MAX_NOTE = 2000

# The scorer's reason codes in words a supervisor can act on; unknown codes are shown humanised.
REASON_TEXT = {
    "no_face": "No face seen: the scorer cannot tell who took the dose.",
    "multiple_people": "More than one person is in the video.",
    "face_cut_off": "The face is partly out of the frame.",
    "too_dark": "The video is too dark to see the pill.",
    "blurry": "The video is blurry.",
    "too_short": "The video is very short.",
    "low_confidence": "No pill-to-mouth movement was seen.",
    "uncertain": "A hand came near the mouth, but the scorer could not be sure.",
}

s, sc, p, rv = schema.submissions, schema.scores, schema.patients, schema.reviews


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why."""


class Conflict(ReviewError):
    """The video changed since it was shown (someone else decided it first)."""


class NotFound(LookupError):
    """No such submission or patient among those the reviewer may see."""


@dataclass(frozen=True)
class Reviewer:
    id: int
    username: str
    role: str
    clinic_id: int | None

    @property
    def clinic_scope(self) -> int | None:
        """The clinic this reviewer is limited to; None for an admin (every clinic).

        Raises:
            PermissionError: the role does not review videos (an analyst).
        """
        if self.role == "admin":
            return None
        if self.role == "supervisor" and self.clinic_id is not None:
            return self.clinic_id
        raise PermissionError(f"a {self.role} does not review videos")


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


def _newest(column: str) -> Any:
    """A column of the submission's newest score, as a correlated subquery.

    A submission may be re-scored by a newer model: the newest score is the one that counts.
    Ranking reads confidence from the covering index ``ix_scores_rank`` without the table.
    """
    newer = schema.scores.alias("sc_newest")
    return (
        select(newer.c[column])
        .where(newer.c.submission_id == s.c.id)
        .order_by(newer.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _latest_score() -> ColumnElement[bool]:
    newer = schema.scores.alias("sc_newest")
    newest = select(func.max(newer.c.id)).where(newer.c.submission_id == s.c.id)
    return sc.c.id == newest.scalar_subquery()


# Unscored videos (none expected in review) rank as least likely instead of vanishing.
_rank = func.coalesce(_newest("confidence"), -1.0)
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


def _scoped(columns: Sequence[Any], reviewer: Reviewer, *where: Any) -> Select[Any]:
    """``SELECT columns`` over submission, patient and newest score, in the reviewer's clinic."""
    query = (
        select(*columns)
        .select_from(s.join(p, p.c.id == s.c.patient_id).outerjoin(sc, _latest_score()))
        .where(*where)
    )
    clinic = reviewer.clinic_scope
    return query if clinic is None else query.where(p.c.clinic_id == clinic)


def _ranked(
    columns: Sequence[Any], reviewer: Reviewer, *where: Any, by_reason: bool = False
) -> Select[Any]:
    """``SELECT columns`` over submissions alone, in the reviewer's clinic.

    The queue ranks up to every waiting video: this narrow form reads only the indexes
    ``ix_submissions_queue`` and ``ix_scores_rank``; details are fetched for one page after.
    ``by_reason``: ``where`` filters on the scorer's reasons (see below).
    """
    clinic = reviewer.clinic_scope
    if clinic is None:
        return select(*columns).select_from(s).where(*where)
    if not by_reason:
        return (
            select(*columns)
            .select_from(s.join(p, p.c.id == s.c.patient_id))
            .where(p.c.clinic_id == clinic, *where)
        )
    # Under a reason filter PostgreSQL expects one row, joins by looping over every patient
    # and takes a second; a clinic lookup per row costs the same whatever it expects.
    owner = select(p.c.clinic_id).where(p.c.id == s.c.patient_id).scalar_subquery()
    return select(*columns).select_from(s).where(owner == clinic, *where)


def _reasons_contain(code: str) -> ColumnElement[bool]:
    # JSON lists are stored as text on SQLite and json on PostgreSQL; both cast to '["a", "b"]'.
    return cast(_newest("reasons"), String).contains(f'"{code}"', autoescape=True)


def _filter(f: QueueFilters) -> list[ColumnElement[bool]]:
    where = [s.c.status == schema.REVIEW]
    if f.patient_code:
        where.append(s.c.patient_id.in_(select(p.c.id).where(p.c.code == f.patient_code)))
    if f.date_from:
        where.append(s.c.dose_date >= f.date_from)
    if f.date_to:
        where.append(s.c.dose_date <= f.date_to)
    if f.reason:
        where.append(_reasons_contain(f.reason))
    return where


def _when(value: datetime) -> datetime:
    """A NOT NULL timestamp as an aware UTC datetime (SQLite gives naive ones back)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _item(row: Any) -> QueueItem:
    return QueueItem(
        row.id,
        row.patient_id,
        row.code,
        row.dose_date,
        row.status,
        _when(row.received_at),
        row.confidence,
        row.decision,
        tuple(row.reasons or ()),
    )


def _items(conn: Connection, reviewer: Reviewer, ids: Sequence[int]) -> list[QueueItem]:
    """Queue items for ``ids``, in that order."""
    rows = (
        {r.id: _item(r) for r in conn.execute(_scoped(ITEM_COLUMNS, reviewer, s.c.id.in_(ids)))}
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
    page = _ranked([s.c.id], reviewer, *_filter(filters), by_reason=bool(filters.reason))
    page = page.order_by(order, s.c.id)
    ids = conn.execute(page.limit(limit).offset(offset)).scalars().all()
    return _items(conn, reviewer, ids)


def queue_size(conn: Connection, reviewer: Reviewer, filters: QueueFilters = QueueFilters()) -> int:
    """How many videos wait for a person under ``filters``."""
    count = _ranked([func.count()], reviewer, *_filter(filters), by_reason=bool(filters.reason))
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
    ranked = _ranked(
        [s.c.id, _rank.label("rank")], reviewer, *_filter(filters), by_reason=bool(filters.reason)
    )
    q = ranked.offset(0).subquery()
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
    if reviewer.clinic_scope is not None:
        done = done.where(p.c.clinic_id == reviewer.clinic_scope)
    auto = (
        select(func.count())
        .select_from(s.join(p, p.c.id == s.c.patient_id))
        .where(s.c.status == schema.AUTO_ACCEPTED, s.c.updated_at >= since)
    )
    if reviewer.clinic_scope is not None:
        auto = auto.where(p.c.clinic_id == reviewer.clinic_scope)
    return Counts(
        int(waiting), int(conn.execute(done).scalar_one()), int(conn.execute(auto).scalar_one())
    )


@dataclass(frozen=True)
class Event:
    type: str
    start_s: float
    end_s: float
    score: float | None

    @property
    def label(self) -> str:
        return self.type.replace("_", " ").capitalize()


@dataclass(frozen=True)
class HistoryEntry:
    reviewer: str
    verdict: str
    reason: str | None
    note: str | None
    previous_status: str
    created_at: datetime
    undone_at: datetime | None


@dataclass(frozen=True)
class ItemDetail:
    submission_id: int
    patient_id: int
    patient_code: str
    dose_date: date
    status: str
    reason: str | None
    received_at: datetime
    duration_s: float | None
    review_key: str | None
    poster_key: str | None
    confidence: float | None
    decision: str | None
    reasons: tuple[str, ...]
    events: tuple[Event, ...]
    key_moment_s: float | None
    face_visible: bool | None
    max_faces: int | None
    model_version: str | None
    history: tuple[HistoryEntry, ...] = field(default=())
    video: VideoState = field(default=VideoState(None, False))  # deleted or erased, and when

    @property
    def still_times_ms(self) -> tuple[int, ...]:
        """Where the still strip samples the video: each event's middle and the key moment."""
        times = {round((e.start_s + e.end_s) / 2 * 1000) for e in self.events}
        if self.key_moment_s is not None:
            times.add(round(self.key_moment_s * 1000))
        end = self.duration_s * 1000 if self.duration_s else float("inf")
        return tuple(sorted(t for t in times if 0 <= t < end))[:8]


def item(conn: Connection, reviewer: Reviewer, sub_id: int, history: bool = True) -> ItemDetail:
    """Everything the item page shows about one submission.

    Raises:
        NotFound: no such submission in the reviewer's clinic.
    """
    row = conn.execute(
        _scoped(
            [
                s.c.id,
                s.c.patient_id,
                p.c.code,
                s.c.dose_date,
                s.c.status,
                s.c.reason,
                s.c.received_at,
                s.c.duration_s,
                s.c.review_key,
                s.c.poster_key,
                sc.c.confidence,
                sc.c.decision,
                sc.c.reasons,
                sc.c.events,
                sc.c.key_moment_s,
                sc.c.face_visible,
                sc.c.max_faces,
                sc.c.model_version,
                s.c.review_deleted_at,
                s.c.erased_at,
            ],
            reviewer,
            s.c.id == sub_id,
        )
    ).first()
    if row is None:
        raise NotFound(f"no submission {sub_id} for this reviewer")
    events = tuple(
        Event(
            str(e.get("type", "event")),
            float(e.get("start_s", 0.0)),
            float(e.get("end_s", e.get("start_s", 0.0))),
            e.get("score"),
        )
        for e in row.events or ()
    )
    entries: tuple[HistoryEntry, ...] = ()
    if history:
        u = schema.users
        entries = tuple(
            HistoryEntry(
                h.username,
                h.verdict,
                h.reason,
                h.note,
                h.previous_status,
                _when(h.created_at),
                as_utc(h.undone_at),
            )
            for h in conn.execute(
                select(
                    u.c.username,
                    rv.c.verdict,
                    rv.c.reason,
                    rv.c.note,
                    rv.c.previous_status,
                    rv.c.created_at,
                    rv.c.undone_at,
                )
                .join(u, u.c.id == rv.c.reviewer_id)
                .where(rv.c.submission_id == sub_id)
                .order_by(rv.c.id)
            )
        )
    return ItemDetail(
        row.id,
        row.patient_id,
        row.code,
        row.dose_date,
        row.status,
        row.reason,
        _when(row.received_at),
        row.duration_s,
        row.review_key,
        row.poster_key,
        row.confidence,
        row.decision,
        tuple(row.reasons or ()),
        events,
        row.key_moment_s,
        row.face_visible,
        row.max_faces,
        row.model_version,
        entries,
        video_state(row.review_deleted_at, row.erased_at),
    )


@dataclass(frozen=True)
class Decision:
    review_id: int
    submission_id: int
    verdict: str
    previous_status: str
    status: str


def record_verdict(
    conn: Connection,
    reviewer: Reviewer,
    sub_id: int,
    verdict: str,
    reason: str | None = None,
    note: str | None = None,
) -> Decision:
    """Record a supervisor's verdict on a waiting or auto-accepted video.

    A verdict on an auto-accepted video is a spot check: ``accept`` agrees with the scorer,
    ``reject`` or ``unclear`` overturns it; both count towards :func:`agreement`.

    Raises:
        ReviewError: unknown verdict, a rejection without a listed reason, or a note too long.
        NotFound: no such submission in the reviewer's clinic.
        Conflict: the video was decided already.
    """
    if verdict not in VERDICTS:
        raise ReviewError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    reason = (reason or "").strip() or None
    if verdict == "reject" and reason not in REJECT_REASONS:
        raise ReviewError(f"pick a reason for rejecting: {', '.join(REJECT_REASONS)}")
    if verdict == "accept":
        reason = None
    elif verdict == "unclear":
        reason = reason or UNCLEAR_REASON
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise ReviewError(f"a note holds at most {MAX_NOTE} characters")
    current = item(conn, reviewer, sub_id, history=False).status
    if current not in DECIDABLE:
        raise Conflict(f"video {sub_id} was already decided ({current.replace('_', ' ')})")
    now = utcnow()
    changed = conn.execute(
        s.update()
        .where(s.c.id == sub_id, s.c.status == current)
        .values(status=VERDICTS[verdict], reason=reason, updated_at=now)
    ).rowcount
    if not changed:
        raise Conflict(f"video {sub_id} changed while you looked at it; reload it")
    inserted = conn.execute(
        rv.insert().values(
            submission_id=sub_id,
            reviewer_id=reviewer.id,
            verdict=verdict,
            reason=reason,
            note=note,
            previous_status=current,
            created_at=now,
        )
    ).inserted_primary_key
    review_id = int(inserted[0]) if inserted else 0
    audit(
        conn,
        reviewer.username,
        f"review.{verdict}",
        f"submission:{sub_id}",
        reason=reason,
        note=note is not None,
        previous_status=current,
        review_id=review_id,
    )
    logger.info("reviewer %s: %s on submission %s", reviewer.id, verdict, sub_id)
    return Decision(review_id, sub_id, verdict, current, VERDICTS[verdict])


def overturn(
    conn: Connection,
    reviewer: Reviewer,
    sub_id: int,
    verdict: str = "reject",
    reason: str | None = "pill not seen",
    note: str | None = None,
) -> Decision:
    """Overturn the scorer's auto-accept of ``sub_id`` (``reject`` or ``unclear``).

    Raises:
        ReviewError: the verdict is ``accept``, or as :func:`record_verdict`.
        Conflict: the video is not auto-accepted (any more).
    """
    if verdict == "accept":
        raise ReviewError("overturning means reject or unclear")
    if item(conn, reviewer, sub_id, history=False).status != schema.AUTO_ACCEPTED:
        raise Conflict(f"video {sub_id} is not auto-accepted")
    return record_verdict(conn, reviewer, sub_id, verdict, reason, note)


def undo_last(conn: Connection, reviewer: Reviewer) -> list[int]:
    """Undo the reviewer's latest decision still in force (a whole bulk accept at once).

    Returns the ids of the submissions put back where they were.

    Raises:
        ReviewError: nothing to undo.
        Conflict: a video changed since (e.g. someone else decided it again).
    """
    last = conn.execute(
        select(rv.c.created_at, rv.c.reason)
        .where(rv.c.reviewer_id == reviewer.id, rv.c.undone_at.is_(None))
        .order_by(rv.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        raise ReviewError("you have no decision to undo")
    batch = select(rv.c.id, rv.c.submission_id, rv.c.verdict, rv.c.previous_status).where(
        rv.c.reviewer_id == reviewer.id, rv.c.undone_at.is_(None)
    )
    if last.reason and last.reason.startswith(BULK_REASON.split(":")[0]):
        batch = batch.where(rv.c.created_at == last.created_at, rv.c.reason == last.reason)
    else:
        batch = batch.order_by(rv.c.id.desc()).limit(1)
    rows = conn.execute(batch).all()
    now = utcnow()
    for row in rows:
        changed = conn.execute(
            s.update()
            .where(s.c.id == row.submission_id, s.c.status == VERDICTS[row.verdict])
            .values(status=row.previous_status, reason=None, updated_at=now)
        ).rowcount
        if not changed:
            raise Conflict(f"video {row.submission_id} changed since your decision; not undone")
    conn.execute(rv.update().where(rv.c.id.in_([r.id for r in rows])).values(undone_at=now))
    ids = [int(r.submission_id) for r in rows]
    target = f"submission:{ids[0]}" if len(ids) == 1 else f"bulk:{len(ids)}"
    audit(
        conn,
        reviewer.username,
        "review.undo",
        target,
        verdict=rows[0].verdict,
        submission_ids=ids,
        review_ids=[int(r.id) for r in rows],
    )
    return ids


@dataclass(frozen=True)
class BulkPreview:
    min_confidence: float
    count: int  # would be accepted
    held_back: int  # above the line too, but with a face or quality problem a person must see
    upto_id: int  # the newest submission counted: what arrives later is not accepted unseen


def _clean() -> ColumnElement[bool]:
    return and_(*(not_(_reasons_contain(code)) for code in sorted(BLOCKS_AUTO_ACCEPT)))


def bulk_preview(conn: Connection, reviewer: Reviewer, min_confidence: float) -> BulkPreview:
    """How many waiting videos a bulk accept at ``min_confidence`` would accept.

    Raises:
        ReviewError: the confidence is outside 0..1.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ReviewError("the confidence for a bulk accept is between 0 and 1")
    clean = _clean()
    row = conn.execute(
        _ranked(
            [func.count(case((clean, 1))), func.count(), func.max(case((clean, s.c.id)))],
            reviewer,
            s.c.status == schema.REVIEW,
            _newest("confidence") >= min_confidence,
        )
    ).one()
    return BulkPreview(min_confidence, int(row[0]), int(row[1] - row[0]), int(row[2] or 0))


def bulk_accept(conn: Connection, reviewer: Reviewer, min_confidence: float, upto_id: int) -> int:
    """Accept every clean waiting video at or above ``min_confidence`` up to ``upto_id``.

    Each video gets its own review row and audit entry, as a single accept would; returns how
    many were accepted (fewer than previewed when someone decided some meanwhile).
    """
    preview = bulk_preview(conn, reviewer, min_confidence)  # validates the confidence
    ids = (
        conn.execute(
            _ranked(
                [s.c.id],
                reviewer,
                s.c.status == schema.REVIEW,
                _newest("confidence") >= min_confidence,
                _clean(),
                s.c.id <= upto_id,
                by_reason=True,
            )
        )
        .scalars()
        .all()
    )
    now, reason, done = utcnow(), BULK_REASON.format(min_confidence), 0
    for start in range(0, len(ids), 500):
        accepted = (
            conn.execute(
                s.update()
                .where(s.c.id.in_(ids[start : start + 500]), s.c.status == schema.REVIEW)
                .values(status=schema.ACCEPTED, reason=None, updated_at=now)
                .returning(s.c.id)
            )
            .scalars()
            .all()
        )
        if not accepted:
            continue
        conn.execute(
            rv.insert(),
            [
                dict(
                    submission_id=i,
                    reviewer_id=reviewer.id,
                    verdict="accept",
                    reason=reason,
                    note=None,
                    previous_status=schema.REVIEW,
                    created_at=now,
                )
                for i in accepted
            ],
        )
        conn.execute(
            schema.audit_log.insert(),
            [
                dict(
                    at=now,
                    actor=reviewer.username,
                    action="review.accept",
                    target=f"submission:{i}",
                    detail={"reason": reason, "bulk": True, "previous_status": schema.REVIEW},
                )
                for i in accepted
            ],
        )
        done += len(accepted)
    audit(
        conn,
        reviewer.username,
        "review.bulk_accept",
        f"bulk:{done}",
        min_confidence=min_confidence,
        accepted=done,
        previewed=preview.count,
        upto_id=upto_id,
    )
    return done


def auto_accepted(
    conn: Connection, reviewer: Reviewer, limit: int = 50, offset: int = 0
) -> list[QueueItem]:
    """Auto-accepted videos, newest first."""
    query = _scoped(ITEM_COLUMNS, reviewer, s.c.status == schema.AUTO_ACCEPTED)
    query = query.order_by(s.c.updated_at.desc(), s.c.id.desc()).limit(limit).offset(offset)
    return [_item(r) for r in conn.execute(query)]


def spot_check_sample(
    conn: Connection, reviewer: Reviewer, size: int = 10, days: int = 7, now: datetime | None = None
) -> list[QueueItem]:
    """A random sample of the videos auto-accepted in the last ``days`` days, not yet checked."""
    since = (now or utcnow()) - timedelta(days=days)
    query = _scoped(
        ITEM_COLUMNS, reviewer, s.c.status == schema.AUTO_ACCEPTED, s.c.updated_at >= since
    )
    return [_item(r) for r in conn.execute(query.order_by(func.random()).limit(size))]


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
    if reviewer.clinic_scope is not None:
        query = query.where(p.c.clinic_id == reviewer.clinic_scope)
    if since is not None:
        query = query.where(rv.c.created_at >= since)
    checked, agreed = conn.execute(query).one()
    return Agreement(int(checked), int(agreed))


@dataclass(frozen=True)
class CalendarDay:
    day: date
    state: str  # one of vot.adherence.STATES, or "rest": no dose due that weekday
    submission_ids: tuple[int, ...]
    is_today: bool


@dataclass(frozen=True)
class PatientCalendar:
    patient_id: int
    code: str
    timezone: str
    adherence: adherence.Adherence
    days: tuple[CalendarDay, ...]


def calendar(
    conn: Connection, reviewer: Reviewer, patient_id: int, now: datetime | None = None
) -> PatientCalendar:
    """Each day of the patient's latest regimen, its state and its submissions.

    A day's state is :func:`vot.adherence.day_state`, so the calendar and the adherence
    figures cannot disagree.

    Raises:
        NotFound: no such patient in the reviewer's clinic.
    """
    query = select(p.c.code, p.c.timezone).where(p.c.id == patient_id)
    if reviewer.clinic_scope is not None:
        query = query.where(p.c.clinic_id == reviewer.clinic_scope)
    patient = conn.execute(query).first()
    if patient is None:
        raise NotFound(f"no patient {patient_id} for this reviewer")
    r, x = schema.regimens, schema.excusals
    row = conn.execute(
        select(r).where(r.c.patient_id == patient_id).order_by(r.c.start_date.desc()).limit(1)
    ).one()
    regimen = adherence.Regimen(
        row.start_date,
        row.length_days,
        row.doses_per_day,
        adherence.weekday_mask(row.days_per_week, row.weekday_mask),
        row.end_date,
    )
    today = adherence.patient_today(patient.timezone, now)
    by_day: dict[date, list[tuple[int, str]]] = {}
    for sub in conn.execute(
        select(s.c.id, s.c.dose_date, s.c.status)
        .where(
            s.c.patient_id == patient_id,
            s.c.dose_date >= regimen.start,
            s.c.dose_date <= regimen.last,
        )
        .order_by(s.c.dose_date, s.c.id)
    ):
        by_day.setdefault(sub.dose_date, []).append((sub.id, sub.status))
    excused = set(
        conn.execute(
            select(x.c.dose_date).where(x.c.patient_id == patient_id, x.c.revoked_at.is_(None))
        ).scalars()
    )
    days, day = [], regimen.start
    while day <= regimen.last:
        subs = by_day.get(day, [])
        statuses = [st for _, st in subs]
        state = "rest"
        if regimen.scheduled(day):
            state = adherence.day_state(
                adherence.Day(
                    taken=sum(st in schema.TAKEN_STATUSES for st in statuses),
                    excused=day in excused,
                    pending=any(st in PENDING for st in statuses),
                    unclear=schema.UNCLEAR in statuses,
                    rejected=schema.REJECTED in statuses,
                ),
                regimen.doses_per_day,
                ended=day < today,
            )
        days.append(CalendarDay(day, state, tuple(i for i, _ in subs), day == today))
        day += timedelta(days=1)
    figures = adherence.for_patient(conn, patient_id, now)
    return PatientCalendar(patient_id, patient.code, patient.timezone, figures, tuple(days))


@dataclass(frozen=True)
class PatientRow:
    patient_id: int
    code: str
    waiting: int


def patients(
    conn: Connection, reviewer: Reviewer, code_prefix: str = "", limit: int = 100, offset: int = 0
) -> list[PatientRow]:
    """The reviewer's patients by code, each with how many of their videos wait."""
    waiting = (
        select(s.c.patient_id, func.count().label("n"))
        .where(s.c.status == schema.REVIEW)
        .group_by(s.c.patient_id)
        .subquery()
    )
    query = (
        select(p.c.id, p.c.code, func.coalesce(waiting.c.n, 0))
        .outerjoin(waiting, waiting.c.patient_id == p.c.id)
        .order_by(p.c.code)
    )
    if reviewer.clinic_scope is not None:
        query = query.where(p.c.clinic_id == reviewer.clinic_scope)
    if code_prefix:
        query = query.where(p.c.code.startswith(code_prefix, autoescape=True))
    return [PatientRow(*r) for r in conn.execute(query.limit(limit).offset(offset))]
