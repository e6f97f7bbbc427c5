"""A reviewer's patients: the list with how many videos wait, and each patient's calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from vot import adherence, schema
from vot.review_scope import NotFound, Reviewer, in_clinic

PENDING = (schema.REVIEW, *schema.PROCESSING_STATUSES)
s, p = schema.submissions, schema.patients


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
    query = in_clinic(select(p.c.code, p.c.timezone).where(p.c.id == patient_id), reviewer)
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
    query = in_clinic(query, reviewer)
    if code_prefix:
        query = query.where(p.c.code.startswith(code_prefix, autoescape=True))
    return [PatientRow(*r) for r in conn.execute(query.limit(limit).offset(offset))]
