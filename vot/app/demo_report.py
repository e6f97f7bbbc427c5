"""What ``vot demo`` prints: the review queue by confidence, each patient's adherence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.adherence import ledger
from vot.app.demo import DEMO_PATIENTS, DEMO_SUPERVISOR, DemoResult
from vot.config import Settings
from vot.db import get_engine

s, sc, p = schema.submissions, schema.scores, schema.patients


def _submissions(conn: Connection, ids: list[int]) -> list[Any]:
    return list(
        conn.execute(
            select(
                s.c.id,
                p.c.code,
                s.c.dose_date,
                s.c.status,
                s.c.reason,
                sc.c.confidence,
                sc.c.decision,
                sc.c.reasons,
            )
            .join(p, p.c.id == s.c.patient_id)
            .outerjoin(sc, sc.c.submission_id == s.c.id)
            .where(s.c.id.in_(ids))
            .order_by(sc.c.confidence.desc().nulls_last(), s.c.id)
        )
    )


def _queue_lines(rows: list[Any]) -> list[str]:
    review = [r for r in rows if r.status == schema.REVIEW]
    lines = [
        f"Review queue ({len(review)} waiting for a supervisor, most likely taken first):",
        f"  {'id':>4}  {'patient':<9} {'dose day':<10} {'conf':>5}  band     reasons",
    ]
    for r in review:
        lines.append(
            f"  {r.id:>4}  {r.code:<9} {r.dose_date!s:<10} {r.confidence:5.2f}  "
            f"{r.decision:<8} {', '.join(r.reasons or [])}"
        )
    for label, status in (("Auto-accepted", schema.AUTO_ACCEPTED), ("Rejected", schema.REJECTED)):
        group = [r for r in rows if r.status == status]
        lines.append(f"{label} ({len(group)}):")
        for r in group:
            conf = f"{r.confidence:5.2f}" if r.confidence is not None else "  -  "
            lines.append(
                f"  {r.id:>4}  {r.code:<9} {r.dose_date!s:<10} {conf}  "
                f"{r.reason or ', '.join(r.reasons or [])}"
            )
    return lines


def _adherence_lines(conn: Connection) -> list[str]:
    patients = conn.execute(
        select(p.c.id, p.c.code)
        .where(p.c.code.in_([c for c, _ in DEMO_PATIENTS]))
        .order_by(p.c.code)
    ).all()
    lines = ["Adherence so far (taken / expected dose days):"]
    for pid, code in patients:
        a = ledger.for_patient(conn, pid)
        rate = f"{a.rate:.0%}" if a.rate is not None else "n/a"
        lines.append(
            f"  {code:<9} {a.taken:>3} / {a.expected:<3} {rate:>5}  "
            f"(regimen {a.regimen_start} to {a.regimen_end})"
        )
    return lines


def report(settings: Settings, result: DemoResult) -> str:
    """What a supervisor would see: the queue by confidence, each patient's adherence."""
    with get_engine(settings).connect() as conn:
        queue = _queue_lines(_submissions(conn, result.submission_ids))
        figures = _adherence_lines(conn)
    password_note = "generated for this run" if result.password_generated else "VOT_DEMO_PASSWORD"
    return "\n".join(
        [
            f"vot demo: {len(result.submission_ids)} videos from {result.clips_dir} "
            f"({result.new_submissions} new) in {result.wall_s:.1f} s",
            "",
            *queue,
            "",
            *figures,
            "",
            "Sign in to the review UI:",
            "  vot serve            # then open http://127.0.0.1:8000/login",
            f"  username: {DEMO_SUPERVISOR}",
            f"  password: {result.password}   ({password_note})",
        ]
    )
