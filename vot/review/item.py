"""One submission as the item page shows it: video, score, scorer events and review history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.db import as_utc
from vot.review.scope import NotFound, Reviewer, aware, scoped

s, sc, p, rv = schema.submissions, schema.scores, schema.patients, schema.reviews


@dataclass(frozen=True)
class VideoState:
    """Whether a submission's review copy is gone, and why, for the pages that show it."""

    deleted_at: datetime | None
    erased: bool

    @property
    def gone(self) -> bool:
        return self.deleted_at is not None

    @property
    def message(self) -> str:
        if self.deleted_at is None:
            return ""
        day = self.deleted_at.strftime("%Y-%m-%d")
        if self.erased:
            return f"This video was erased at the patient's request on {day}."
        return f"This video was deleted under the retention policy on {day}."


def video_state(review_deleted_at: datetime | None, erased_at: datetime | None) -> VideoState:
    """The state of a review copy from its submission's two deletion times (see
    :mod:`vot.retention`)."""
    when = as_utc(erased_at) or as_utc(review_deleted_at)
    return VideoState(when, erased_at is not None)


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


_ITEM_COLUMNS = (
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
)


def _events(stored: Any) -> tuple[Event, ...]:
    return tuple(
        Event(
            str(e.get("type", "event")),
            float(e.get("start_s", 0.0)),
            float(e.get("end_s", e.get("start_s", 0.0))),
            e.get("score"),
        )
        for e in stored or ()
    )


def _history(conn: Connection, sub_id: int) -> tuple[HistoryEntry, ...]:
    u = schema.users
    rows = conn.execute(
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
    return tuple(
        HistoryEntry(
            h.username,
            h.verdict,
            h.reason,
            h.note,
            h.previous_status,
            aware(h.created_at),
            as_utc(h.undone_at),
        )
        for h in rows
    )


def item(conn: Connection, reviewer: Reviewer, sub_id: int, history: bool = True) -> ItemDetail:
    """Everything the item page shows about one submission.

    Raises:
        NotFound: no such submission in the reviewer's clinic.
    """
    row = conn.execute(scoped(_ITEM_COLUMNS, reviewer, s.c.id == sub_id)).first()
    if row is None:
        raise NotFound(f"no submission {sub_id} for this reviewer")
    return ItemDetail(
        row.id,
        row.patient_id,
        row.code,
        row.dose_date,
        row.status,
        row.reason,
        aware(row.received_at),
        row.duration_s,
        row.review_key,
        row.poster_key,
        row.confidence,
        row.decision,
        tuple(row.reasons or ()),
        _events(row.events),
        row.key_moment_s,
        row.face_visible,
        row.max_faces,
        row.model_version,
        _history(conn, sub_id) if history else (),
        video_state(row.review_deleted_at, row.erased_at),
    )
