"""A reviewer's patients: the list with how many videos wait, and each patient's calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from vot import schema
from vot.adherence import ledger
from vot.adherence import rules as adherence
from vot.review.scope import NotFound, Reviewer, in_clinic

PENDING = (schema.REVIEW, *schema.PROCESSING_STATUSES)
s, p = schema.submissions, schema.patients


@dataclass(frozen=True)
class CalendarDay:
    day: date
    state: str  # one of vot.adherence.rules.STATES, or "rest": no dose due that weekday
    submission_ids: tuple[int, ...]
    is_today: bool


@dataclass(frozen=True)
class PatientCalendar:
    patient_id: int
    code: str
    timezone: str
    adherence: adherence.Adherence
    days: tuple[CalendarDay, ...]


def _latest_regimen(conn: Connection, patient_id: int) -> adherence.Regimen:
    r = schema.regimens
    row = conn.execute(
        select(r).where(r.c.patient_id == patient_id).order_by(r.c.start_date.desc()).limit(1)
    ).one()
    return adherence.Regimen(
        row.start_date,
        row.length_days,
        row.doses_per_day,
        adherence.weekday_mask(row.days_per_week, row.weekday_mask),
        row.end_date,
    )


def _by_day(
    conn: Connection, patient_id: int, regimen: adherence.Regimen
) -> dict[date, list[tuple[int, str]]]:
    """The patient's submissions (id, status) per dose day of ``regimen``."""
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
    return by_day


def _ledger_day(statuses: list[str], excused: bool) -> adherence.Day:
    return adherence.Day(
        taken=sum(st in schema.TAKEN_STATUSES for st in statuses),
        excused=excused,
        pending=any(st in PENDING for st in statuses),
        unclear=schema.UNCLEAR in statuses,
        rejected=schema.REJECTED in statuses,
    )


def calendar(
    conn: Connection, reviewer: Reviewer, patient_id: int, now: datetime | None = None
) -> PatientCalendar:
    """Each day of the patient's latest regimen, its state and its submissions.

    A day's state is :func:`vot.adherence.rules.day_state`, so the calendar and the adherence
    figures cannot disagree.

    Raises:
        NotFound: no such patient in the reviewer's clinic.
    """
    query = in_clinic(select(p.c.code, p.c.timezone).where(p.c.id == patient_id), reviewer)
    patient = conn.execute(query).first()
    if patient is None:
        raise NotFound(f"no patient {patient_id} for this reviewer")
    x = schema.excusals
    regimen = _latest_regimen(conn, patient_id)
    today = adherence.patient_today(patient.timezone, now)
    by_day = _by_day(conn, patient_id, regimen)
    excused = set(
        conn.execute(
            select(x.c.dose_date).where(x.c.patient_id == patient_id, x.c.revoked_at.is_(None))
        ).scalars()
    )
    days, day = [], regimen.start
    while day <= regimen.last:
        subs = by_day.get(day, [])
        state = "rest"
        if regimen.scheduled(day):
            ledger_day = _ledger_day([st for _, st in subs], day in excused)
            state = adherence.day_state(ledger_day, regimen.doses_per_day, ended=day < today)
        days.append(CalendarDay(day, state, tuple(i for i, _ in subs), day == today))
        day += timedelta(days=1)
    figures = ledger.for_patient(conn, patient_id, now)
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
