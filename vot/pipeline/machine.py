"""The submission state machine, kept in the database (the source of truth, not the queue).

received -> transcoding -> scoring -> review | auto_accepted, or rejected with a reason when the
file turns out unusable; then a supervisor's verdict (accepted, rejected, unclear), which undo
reverses. :data:`TRANSITIONS` says which status may follow which, and every status change in the
code goes through :func:`move` (or :func:`move_many`): a guarded
``UPDATE ... WHERE status IN (...)``, so running a step twice (a retry, a re-queued job after a
crash, two supervisors at once) does no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from vot import schema
from vot.db import as_utc, audit, utcnow
from vot.pipeline import replays
from vot.treatment import days
from vot.triage.bands import AUTO_ACCEPT, Triaged, with_reason

logger = logging.getLogger(__name__)

TRANSCODE = "transcode"
SCORE = "score"
MAX_ATTEMPTS = 5  # processing attempts before a submission is given up with a reason
STAGE_OF_STATUS = {schema.RECEIVED: TRANSCODE, schema.TRANSCODING: TRANSCODE, schema.SCORING: SCORE}

subs = schema.submissions
(RECEIVED, TRANSCODING, SCORING, REVIEW) = (
    schema.RECEIVED,
    schema.TRANSCODING,
    schema.SCORING,
    schema.REVIEW,
)
(AUTO_ACCEPTED, ACCEPTED, REJECTED, UNCLEAR) = (
    schema.AUTO_ACCEPTED,
    schema.ACCEPTED,
    schema.REJECTED,
    schema.UNCLEAR,
)
_VERDICTS = frozenset({ACCEPTED, REJECTED, UNCLEAR})
_BACK = frozenset({REVIEW, AUTO_ACCEPTED})  # undo puts a decided video back where it was
TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({TRANSCODING, REJECTED}),
    # A transcode claimed again (a retry) stays transcoding; a score job touches its claim.
    TRANSCODING: frozenset({TRANSCODING, SCORING, REJECTED}),
    SCORING: frozenset({SCORING, REVIEW, AUTO_ACCEPTED, REJECTED}),
    REVIEW: _VERDICTS,
    AUTO_ACCEPTED: _VERDICTS,  # a spot check agrees (accepted) or overturns it
    ACCEPTED: _BACK,
    REJECTED: _BACK,
    UNCLEAR: _BACK,
}


class TransitionError(ValueError):
    """A status change the state machine does not allow (a bug in the caller, not user input)."""


def _guarded(to: str, only_from: Iterable[str], at: datetime | None, values: dict[str, Any]) -> Any:
    sources = tuple(only_from)
    for source in sources:
        if to not in TRANSITIONS[source]:
            raise TransitionError(f"a submission cannot go from {source} to {to}")
    return (
        subs.update()
        .where(subs.c.status.in_(sources))
        .values(status=to, updated_at=at or utcnow(), **values)
    )


# What a video makes of its day in the day ledger (vot.treatment.days): a move within one
# group leaves the day as it was, so it is not rewritten.
_DAY_GROUP = {status: "pending" for status in days.PENDING_STATUSES}
_DAY_GROUP.update({status: "taken" for status in schema.TAKEN_STATUSES})


def _day_changes(only_from: Iterable[str], to: str) -> bool:
    return any(_DAY_GROUP.get(source, source) != _DAY_GROUP.get(to, to) for source in only_from)


def move(
    conn: Connection,
    sub_id: int,
    to: str,
    only_from: Iterable[str],
    *,
    at: datetime | None = None,
    **values: Any,
) -> bool:
    """Move one submission to ``to`` if its status is one of ``only_from``; whether it moved.

    ``values`` are other columns to set with it (``reason``, keys); ``updated_at`` becomes
    ``at`` (default now). The day ledger of the video's day is rewritten in the same
    transaction when the move changes what the day holds.

    Raises:
        TransitionError: a move from one of ``only_from`` to ``to`` is not allowed.
    """
    return bool(move_many(conn, [sub_id], to, only_from, at=at, **values))


def move_many(
    conn: Connection,
    sub_ids: Sequence[int],
    to: str,
    only_from: Iterable[str],
    *,
    at: datetime | None = None,
    **values: Any,
) -> list[int]:
    """:func:`move` for many submissions at once; returns the ids that moved, in order."""
    sources = tuple(only_from)
    query = _guarded(to, sources, at, values).where(subs.c.id.in_(sub_ids))
    moved = conn.execute(query.returning(subs.c.id, subs.c.patient_id, subs.c.dose_date)).all()
    if moved and _day_changes(sources, to):
        days.touch(conn, [(row.patient_id, row.dose_date) for row in moved])
    return sorted(int(row.id) for row in moved)


@dataclass(frozen=True)
class SubmissionRow:
    id: int
    patient_id: int
    dose_date: date
    status: str
    reason: str | None
    raw_key: str
    content_sha256: str
    review_key: str | None
    poster_key: str | None
    duration_s: float | None
    attempts: int
    updated_at: datetime


def get_submission(conn: Connection, sub_id: int) -> SubmissionRow | None:
    row = conn.execute(
        select(
            subs.c.id,
            subs.c.patient_id,
            subs.c.dose_date,
            subs.c.status,
            subs.c.reason,
            subs.c.raw_key,
            subs.c.content_sha256,
            subs.c.review_key,
            subs.c.poster_key,
            subs.c.duration_s,
            subs.c.attempts,
            subs.c.updated_at,
        ).where(subs.c.id == sub_id)
    ).first()
    if row is None:
        return None
    values = row._asdict()
    values["updated_at"] = as_utc(values["updated_at"])
    return SubmissionRow(**values)


def start_transcode(engine: Engine, sub_id: int) -> SubmissionRow | None:
    """Claim the transcode step; None when the submission is already past it (a re-run)."""
    with engine.begin() as conn:
        claimed = move(
            conn, sub_id, TRANSCODING, (RECEIVED, TRANSCODING), attempts=subs.c.attempts + 1
        )
        return get_submission(conn, sub_id) if claimed else None


def finish_transcode(engine: Engine, sub_id: int, review_key: str, poster_key: str | None) -> bool:
    with engine.begin() as conn:
        return move(
            conn,
            sub_id,
            SCORING,
            (TRANSCODING,),
            review_key=review_key,
            poster_key=poster_key,
            reason=None,
        )


def start_score(engine: Engine, sub_id: int) -> SubmissionRow | None:
    """The submission if it is waiting to be scored, else None (already scored or rejected)."""
    with engine.begin() as conn:
        claimed = move(conn, sub_id, SCORING, (SCORING,))
        return get_submission(conn, sub_id) if claimed else None


def _insert_score(conn: Connection, sub_id: int, scored: Triaged, processing_s: float) -> None:
    """Store one score; a second one for the same model and thresholds is ignored (a re-run)."""
    score, triage = scored.score, scored.triage
    try:
        with conn.begin_nested():
            conn.execute(
                schema.scores.insert().values(
                    submission_id=sub_id,
                    model_version=score["model_version"],
                    threshold_version=scored.threshold_version,
                    confidence=float(score["confidence"]),
                    decision=triage.decision,
                    face_visible=bool(score["face_visible"]),
                    max_faces=int(score["max_faces"]),
                    key_moment_s=score.get("key_moment_s"),
                    events=score["events"],
                    quality=score["quality"],
                    reasons=list(triage.reasons),
                    processing_s=processing_s,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        logger.info("submission %s already has a score for this model; keeping it", sub_id)


def record_score(
    engine: Engine,
    sub_id: int,
    scored: Triaged,
    processing_s: float,
    replay_clinic_days: int = replays.CLINIC_DAYS,
) -> str | None:
    """Store the score and move the submission to its band; returns the new status.

    Only a video in the auto-accept band skips the person: the reject band still goes to a
    supervisor (ranked last), because a rejection costs the patient a dose. A video that is the
    same recording as an earlier one (:mod:`vot.pipeline.replays`) gets the reason
    ``replayed`` and never skips the person.
    """
    fingerprint = list(scored.score.get("fingerprint") or ())
    with engine.begin() as conn:
        match = replays.find(conn, sub_id, fingerprint, replay_clinic_days)
        if match is not None:
            scored = with_reason(scored, replays.REASON)
        status = AUTO_ACCEPTED if scored.triage.decision == AUTO_ACCEPT else REVIEW
        _insert_score(conn, sub_id, scored, processing_s)
        if fingerprint:
            replays.store(conn, sub_id, fingerprint, match.submission_id if match else None)
        if not move(conn, sub_id, status, (SCORING,)):
            return None
        audit(
            conn,
            "scorer",
            "submission.triage",
            f"submission:{sub_id}",
            decision=scored.triage.decision,
            confidence=round(float(scored.score["confidence"]), 4),
            same_as=match.submission_id if match else None,
        )
    return status


def reject_unusable(engine: Engine, sub_id: int, reason: str) -> bool:
    """End a submission whose file cannot be used, with a reason the patient can act on."""
    with engine.begin() as conn:
        changed = move(conn, sub_id, REJECTED, schema.PROCESSING_STATUSES, reason=reason[:500])
        if changed:
            audit(conn, "pipeline", "submission.unusable", f"submission:{sub_id}", reason=reason)
    return changed


def stop_processing(conn: Connection, patient_id: int, reason: str, at: datetime) -> list[int]:
    """Reject every submission of ``patient_id`` still being processed (its jobs then skip it),
    with ``reason``; returns their ids."""
    processing = conn.execute(
        select(subs.c.id).where(
            subs.c.patient_id == patient_id, subs.c.status.in_(schema.PROCESSING_STATUSES)
        )
    ).scalars()
    ids = list(processing)
    return move_many(conn, ids, REJECTED, schema.PROCESSING_STATUSES, at=at, reason=reason)


def note_failure(engine: Engine, sub_id: int, reason: str) -> None:
    """Record why a step failed without changing the status: the sweeper retries it later."""
    with engine.begin() as conn:
        conn.execute(
            subs.update()
            .where(subs.c.id == sub_id, subs.c.status.in_(schema.PROCESSING_STATUSES))
            .values(reason=f"retrying: {reason}"[:500])
        )


def in_processing(engine: Engine, older_than_s: float = 0.0) -> list[SubmissionRow]:
    """Submissions still being processed, untouched for at least ``older_than_s`` seconds."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with engine.connect() as conn:
        ids = (
            conn.execute(
                select(subs.c.id)
                .where(subs.c.status.in_(schema.PROCESSING_STATUSES), subs.c.updated_at <= cutoff)
                .order_by(subs.c.id)
            )
            .scalars()
            .all()
        )
        rows = [get_submission(conn, i) for i in ids]
    return [r for r in rows if r is not None]
