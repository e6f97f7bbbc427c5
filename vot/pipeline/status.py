"""Where a submission is: its status, reason and latest score, for ``vot status`` and the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from vot import schema


def describe(engine: Engine, submission_id: int) -> dict[str, Any]:
    """A plain dict describing one submission.

    Raises:
        LookupError: there is no such submission.
    """
    s, p, sc = schema.submissions, schema.patients, schema.scores
    with engine.connect() as conn:
        row = conn.execute(
            select(
                s.c.id,
                p.c.code.label("patient"),
                s.c.dose_date,
                s.c.status,
                s.c.reason,
                s.c.received_at,
                s.c.updated_at,
                s.c.duration_s,
                s.c.size_bytes,
                s.c.attempts,
            )
            .join(p, p.c.id == s.c.patient_id)
            .where(s.c.id == submission_id)
        ).first()
        if row is None:
            raise LookupError(f"no submission {submission_id}")
        score = conn.execute(
            select(
                sc.c.confidence,
                sc.c.decision,
                sc.c.reasons,
                sc.c.model_version,
                sc.c.threshold_version,
                sc.c.processing_s,
            )
            .where(sc.c.submission_id == submission_id)
            .order_by(sc.c.id.desc())
        ).first()
    info = dict(row._mapping)
    if score is not None:
        info.update(
            {
                "confidence": round(score.confidence, 4),
                "decision": score.decision,
                "reasons": ", ".join(score.reasons or []) or "-",
                "model_version": score.model_version,
                "threshold_version": score.threshold_version,
                "processing_s": round(score.processing_s or 0.0, 2),
            }
        )
    return info
