"""The submission state machine, kept in the database (the source of truth, not the queue).

received -> transcoding -> scoring -> review | auto_accepted, or rejected with a reason when the
file turns out unusable. Each step is a guarded ``UPDATE ... WHERE status = ...`` so running a
step twice (a retry, a re-queued job after a crash) does no harm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from vot import schema
from vot.db import as_utc, audit, utcnow
from vot.triage import AUTO_ACCEPT, Triage

logger = logging.getLogger(__name__)

TRANSCODE = "transcode"
SCORE = "score"
MAX_ATTEMPTS = 5  # processing attempts before a submission is given up with a reason
STAGE_OF_STATUS = {schema.RECEIVED: TRANSCODE, schema.TRANSCODING: TRANSCODE, schema.SCORING: SCORE}

subs = schema.submissions


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
        changed = conn.execute(
            subs.update()
            .where(subs.c.id == sub_id, subs.c.status.in_((schema.RECEIVED, schema.TRANSCODING)))
            .values(status=schema.TRANSCODING, attempts=subs.c.attempts + 1, updated_at=utcnow())
        ).rowcount
        return get_submission(conn, sub_id) if changed else None


def finish_transcode(engine: Engine, sub_id: int, review_key: str, poster_key: str | None) -> bool:
    with engine.begin() as conn:
        return bool(
            conn.execute(
                subs.update()
                .where(subs.c.id == sub_id, subs.c.status == schema.TRANSCODING)
                .values(
                    status=schema.SCORING,
                    review_key=review_key,
                    poster_key=poster_key,
                    reason=None,
                    updated_at=utcnow(),
                )
            ).rowcount
        )


def start_score(engine: Engine, sub_id: int) -> SubmissionRow | None:
    """The submission if it is waiting to be scored, else None (already scored or rejected)."""
    with engine.begin() as conn:
        changed = conn.execute(
            subs.update()
            .where(subs.c.id == sub_id, subs.c.status == schema.SCORING)
            .values(updated_at=utcnow())
        ).rowcount
        return get_submission(conn, sub_id) if changed else None


def record_score(
    engine: Engine,
    sub_id: int,
    score: dict[str, Any],
    triage: Triage,
    threshold_version: str,
    processing_s: float,
) -> str | None:
    """Store the score and move the submission to its band; returns the new status.

    Only a video in the auto-accept band skips the person: the reject band still goes to a
    supervisor (ranked last), because a rejection costs the patient a dose.
    """
    status = schema.AUTO_ACCEPTED if triage.decision == AUTO_ACCEPT else schema.REVIEW
    with engine.begin() as conn:
        try:
            with conn.begin_nested():
                conn.execute(
                    schema.scores.insert().values(
                        submission_id=sub_id,
                        model_version=score["model_version"],
                        threshold_version=threshold_version,
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
        changed = conn.execute(
            subs.update()
            .where(subs.c.id == sub_id, subs.c.status == schema.SCORING)
            .values(status=status, updated_at=utcnow())
        ).rowcount
        if not changed:
            return None
        audit(
            conn,
            "scorer",
            "submission.triage",
            f"submission:{sub_id}",
            decision=triage.decision,
            confidence=round(float(score["confidence"]), 4),
        )
    return status


def reject_unusable(engine: Engine, sub_id: int, reason: str) -> bool:
    """End a submission whose file cannot be used, with a reason the patient can act on."""
    with engine.begin() as conn:
        changed = conn.execute(
            subs.update()
            .where(subs.c.id == sub_id, subs.c.status.in_(schema.PROCESSING_STATUSES))
            .values(status=schema.REJECTED, reason=reason[:500], updated_at=utcnow())
        ).rowcount
        if changed:
            audit(conn, "pipeline", "submission.unusable", f"submission:{sub_id}", reason=reason)
    return bool(changed)


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
