"""A reviewer's patients: the list with how many videos wait, and each patient's calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from vot import schema
from vot.adherence import ledger
from vot.adherence.rules import Adherence
from vot.adherence.scope import Scope
from vot.db import utcnow
from vot.review.scope import NotFound, Reviewer, in_clinic
from vot.treatment import days
from vot.treatment.course import Course

PENDING = (schema.REVIEW, *schema.PROCESSING_STATUSES)
s, p = schema.submissions, schema.patients


@dataclass(frozen=True)
class CalendarDay:
    day: date
    state: str  # one of vot.adherence.rules.STATES, or "rest": no dose due that day
    submission_ids: tuple[int, ...]
    is_today: bool
    kind: str | None = None  # how a taken day was seen: "video", "in_person" or "phone"
    excused: bool = False  # a standing excusal (it may be overruled by a dose taken)


@dataclass(frozen=True)
class PatientCalendar:
    patient_id: int
    code: str
    timezone: str
    adherence: Adherence
    days: tuple[CalendarDay, ...]
    course: Course
    outcome: str | None = None
    outcome_date: date | None = None


KIND = {days.VIDEO: "video", days.IN_PERSON: "in_person", days.PHONE: "phone"}


def _by_day(conn: Connection, patient_id: int, course: Course) -> dict[date, list[int]]:
    """The patient's submissions (ids) per day of the course."""
    by_day: dict[date, list[int]] = {}
    for sub_id, day in conn.execute(
        select(s.c.id, s.c.dose_date)
        .where(
            s.c.patient_id == patient_id,
            s.c.dose_date >= course.start,
            s.c.dose_date <= course.last,
        )
        .order_by(s.c.dose_date, s.c.id)
    ):
        by_day.setdefault(day, []).append(sub_id)
    return by_day


def calendar(
    conn: Connection, reviewer: Reviewer, patient_id: int, now: datetime | None = None
) -> PatientCalendar:
    """Each day of the patient's latest course, its state and its submissions.

    A day's state is what the day ledger holds (:mod:`vot.treatment.days`), the same the
    adherence figures count, so the calendar and the figures cannot disagree.

    Raises:
        NotFound: no such patient in the reviewer's clinic.
    """
    query = in_clinic(select(p.c.code, p.c.timezone).where(p.c.id == patient_id), reviewer)
    patient = conn.execute(query).first()
    if patient is None:
        raise NotFound(f"no patient {patient_id} for this reviewer")
    got = next(ledger.rows(conn, now or utcnow(), None, Scope(patient_id=patient_id)))
    course, text, when = got.course, got.text, got.when
    by_day = _by_day(conn, patient_id, course)
    x = schema.excusals
    excused = set(
        conn.execute(
            select(x.c.dose_date).where(x.c.patient_id == patient_id, x.c.revoked_at.is_(None))
        ).scalars()
    )
    found, day = [], course.start
    while day <= course.last:
        o = (day - course.start).days
        char = text[o] if o < len(text) else days.NOTHING
        state = "rest"
        if course.scheduled(day):
            state = days.CODES[char]
            if state == "missed" and day > when.through:
                state = "not_due"
        ids = tuple(by_day.get(day, ()))
        found.append(
            CalendarDay(day, state, ids, day == when.today, KIND.get(char), day in excused)
        )
        day += timedelta(days=1)
    return PatientCalendar(
        patient_id,
        patient.code,
        patient.timezone,
        got.row.adherence,
        tuple(found),
        course,
        got.row.outcome,
        got.row.outcome_date,
    )


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
