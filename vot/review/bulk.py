"""Bulk accept: every clean waiting video at or above a confidence, previewed first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, not_
from sqlalchemy.sql import ColumnElement

from vot import schema
from vot.db import audit, utcnow
from vot.pipeline import machine
from vot.review.scope import Reviewer, ReviewError, newest, ranked, reasons_contain
from vot.triage.bands import BLOCKS_AUTO_ACCEPT

BULK_REASON = "bulk accept: confidence at least {:.2f}"
s, rv = schema.submissions, schema.reviews


@dataclass(frozen=True)
class BulkPreview:
    min_confidence: float
    count: int  # would be accepted
    held_back: int  # above the line too, but with a face or quality problem a person must see
    upto_id: int  # the newest submission counted: what arrives later is not accepted unseen


def _clean() -> ColumnElement[bool]:
    return and_(*(not_(reasons_contain(code)) for code in sorted(BLOCKS_AUTO_ACCEPT)))


def bulk_preview(conn: Connection, reviewer: Reviewer, min_confidence: float) -> BulkPreview:
    """How many waiting videos a bulk accept at ``min_confidence`` would accept.

    Raises:
        ReviewError: the confidence is outside 0..1.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ReviewError("the confidence for a bulk accept is between 0 and 1")
    clean = _clean()
    row = conn.execute(
        ranked(
            [func.count(case((clean, 1))), func.count(), func.max(case((clean, s.c.id)))],
            reviewer,
            s.c.status == schema.REVIEW,
            newest("confidence") >= min_confidence,
        )
    ).one()
    return BulkPreview(min_confidence, int(row[0]), int(row[1] - row[0]), int(row[2] or 0))


def _record_accepts(
    conn: Connection, reviewer: Reviewer, ids: list[int], reason: str, now: datetime
) -> None:
    """One review row and one audit entry per accepted video, as a single accept writes."""
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
            for i in ids
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
            for i in ids
        ],
    )


def bulk_accept(conn: Connection, reviewer: Reviewer, min_confidence: float, upto_id: int) -> int:
    """Accept every clean waiting video at or above ``min_confidence`` up to ``upto_id``.

    Each video gets its own review row and audit entry, as a single accept would; returns how
    many were accepted (fewer than previewed when someone decided some meanwhile).
    """
    preview = bulk_preview(conn, reviewer, min_confidence)  # validates the confidence
    ids = (
        conn.execute(
            ranked(
                [s.c.id],
                reviewer,
                s.c.status == schema.REVIEW,
                newest("confidence") >= min_confidence,
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
        chunk = ids[start : start + 500]
        accepted = machine.move_many(
            conn, chunk, schema.ACCEPTED, (schema.REVIEW,), at=now, reason=None
        )
        if accepted:
            _record_accepts(conn, reviewer, accepted, reason, now)
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
