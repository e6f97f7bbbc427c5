"""A supervisor's verdict on one video, overturning an auto-accept, and undo."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, select

from vot import schema
from vot.db import audit, utcnow
from vot.outreach import messages
from vot.pipeline import machine
from vot.review.bulk import BULK_REASON
from vot.review.item import item
from vot.review.scope import Conflict, Reviewer, ReviewError

logger = logging.getLogger(__name__)

VERDICTS = {"accept": schema.ACCEPTED, "reject": schema.REJECTED, "unclear": schema.UNCLEAR}
REJECT_REASONS = ("pill not seen", "not the patient", "video unclear", "video sent before", "other")
UNCLEAR_REASON = "ask the patient to record again"
DECIDABLE = (schema.REVIEW, schema.AUTO_ACCEPTED)
MAX_NOTE = 2000
rv = schema.reviews


@dataclass(frozen=True)
class Decision:
    review_id: int
    submission_id: int
    verdict: str
    previous_status: str
    status: str


def _checked(verdict: str, reason: str | None, note: str | None) -> tuple[str | None, str | None]:
    """The reason and note a verdict is recorded with.

    Raises:
        ReviewError: unknown verdict, a rejection without a listed reason, or a note too long.
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
    return reason, note


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
    ``reject`` or ``unclear`` overturns it; both count towards :func:`agreement`. A ``reject`` or
    ``unclear`` verdict also sends the patient a message with the reason and a way to record
    the dose again (:func:`vot.outreach.messages.record_again`).

    Raises:
        ReviewError: unknown verdict, a rejection without a listed reason, or a note too long.
        NotFound: no such submission in the reviewer's clinic.
        Conflict: the video was decided already.
    """
    reason, note = _checked(verdict, reason, note)
    found = item(conn, reviewer, sub_id, history=False)
    current = found.status
    if current not in DECIDABLE:
        raise Conflict(f"video {sub_id} was already decided ({current.replace('_', ' ')})")
    now = utcnow()
    if not machine.move(conn, sub_id, VERDICTS[verdict], (current,), at=now, reason=reason):
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
    if verdict in ("reject", "unclear") and reason:
        # The patient hears it from their clinic, kindly, with a way to record the dose again.
        messages.record_again(conn, found.patient_id, found.dose_date, reason, reviewer.id)
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
        back = (VERDICTS[row.verdict],)
        if not machine.move(
            conn, row.submission_id, row.previous_status, back, at=now, reason=None
        ):
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
