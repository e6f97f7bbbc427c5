"""Doses a supervisor records by hand: watched in person, or confirmed by phone after a video
could not be used; and excused days (in hospital, drugs out of stock).

Each is a row that is never deleted (withdrawing one sets ``revoked_at``), an audit-log entry
with who recorded it, and a rewrite of that day in the day ledger, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Table, select

from vot import schema
from vot.db import audit, inserted_id, utcnow
from vot.treatment import courses, days
from vot.treatment.course import Course, patient_today

MAX_NOTE = 500
o, x, p = schema.observed_doses, schema.excusals, schema.patients


class DoseError(ValueError):
    """A dose or excusal that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Recorded:
    id: int
    patient_id: int
    day: date
    kind: str


def _checked_day(conn: Connection, patient_id: int, day: date, now: datetime | None) -> Course:
    """The patient's course, when ``day`` is a dose day of it that has begun.

    Raises:
        DoseError: the day is outside the course, still to come, or no dose is due on it.
    """
    timezone = conn.execute(select(p.c.timezone).where(p.c.id == patient_id)).scalar_one()
    course = courses.latest(conn, patient_id)
    today = patient_today(timezone, now)
    if day > today:
        raise DoseError(f"{day} has not come yet in the patient's time zone (today is {today})")
    if not course.start <= day <= course.last:
        raise DoseError(f"{day} is outside the course ({course.start} to {course.last})")
    if not course.scheduled(day):
        schedule = course.segment_at(day).regimen.describe()  # type: ignore[union-attr]
        raise DoseError(f"no dose is due on {day} ({course.regimen.id}: {schedule})")
    return course


def _note(note: str | None) -> str | None:
    text = " ".join((note or "").split())
    if len(text) > MAX_NOTE:
        raise DoseError(f"a note holds at most {MAX_NOTE} characters")
    return text or None


def _written(
    conn: Connection,
    table: Table,
    patient_id: int,
    day: date,
    note: str | None,
    now: datetime | None,
    **values: object,
) -> int:
    """Insert a dose or excusal row for ``day`` and rewrite that day in the ledger; its id."""
    row_id = inserted_id(
        conn.execute(
            table.insert().values(
                patient_id=patient_id,
                dose_date=day,
                note=_note(note),
                created_at=now or utcnow(),
                **values,
            )
        )
    )
    days.touch(conn, [(patient_id, day)])
    return row_id


def record_dose(
    conn: Connection,
    patient_id: int,
    day: date,
    kind: str,
    by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Record a dose watched in person (``in_person``) or confirmed by ``phone``; it counts as
    taken. Recording the same kind for the same day again returns the standing record.

    Raises:
        DoseError: an unknown kind, or a day that is not a dose day of the course so far.
    """
    if kind not in schema.DOSE_KINDS:
        raise DoseError(f"the kind of dose is one of {', '.join(schema.DOSE_KINDS)}, not {kind!r}")
    _checked_day(conn, patient_id, day, now)
    standing = conn.execute(
        select(o.c.id).where(
            o.c.patient_id == patient_id,
            o.c.dose_date == day,
            o.c.kind == kind,
            o.c.revoked_at.is_(None),
        )
    ).scalar()
    if standing is not None:
        return Recorded(int(standing), patient_id, day, kind)
    dose_id = _written(conn, o, patient_id, day, note, now, kind=kind, recorded_by=by)
    audit(conn, by, f"dose.{kind}", f"patient:{patient_id}", day=day.isoformat(), dose=dose_id)
    return Recorded(dose_id, patient_id, day, kind)


def withdraw_dose(conn: Connection, patient_id: int, dose_id: int, by: str) -> None:
    """Withdraw a dose recorded by hand (a mistake); the record stays, marked withdrawn.

    Raises:
        DoseError: no such standing dose for this patient.
    """
    day = conn.execute(
        select(o.c.dose_date).where(
            o.c.id == dose_id, o.c.patient_id == patient_id, o.c.revoked_at.is_(None)
        )
    ).scalar()
    if day is None:
        raise DoseError(f"no recorded dose {dose_id} for this patient")
    conn.execute(o.update().where(o.c.id == dose_id).values(revoked_at=utcnow()))
    days.touch(conn, [(patient_id, day)])
    audit(conn, by, "dose.withdraw", f"patient:{patient_id}", dose=dose_id, day=day.isoformat())


def excuse(
    conn: Connection,
    patient_id: int,
    day: date,
    reason: str,
    user_id: int,
    by: str,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """Excuse a dose day (the patient was in hospital, the clinic had no drugs, ...): it is
    neither taken nor missed. Returns the excusal's id.

    Raises:
        DoseError: an unknown reason, or a day that is not a dose day of the course so far.
    """
    if reason not in schema.EXCUSE_REASONS:
        raise DoseError(f"the reason is one of {', '.join(schema.EXCUSE_REASONS)}, not {reason!r}")
    _checked_day(conn, patient_id, day, now)
    excusal = _written(conn, x, patient_id, day, note, now, reason=reason, recorded_by=user_id)
    audit(conn, by, "dose.excuse", f"patient:{patient_id}", day=day.isoformat(), reason=reason)
    return excusal


def withdraw_excusal(conn: Connection, patient_id: int, day: date, by: str) -> int:
    """Withdraw every standing excusal of ``day``; how many there were."""
    withdrawn = conn.execute(
        x.update()
        .where(x.c.patient_id == patient_id, x.c.dose_date == day, x.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    if withdrawn:
        days.touch(conn, [(patient_id, day)])
        audit(conn, by, "dose.withdraw_excusal", f"patient:{patient_id}", day=day.isoformat())
    return int(withdrawn)


def recorded(conn: Connection, patient_id: int) -> list[dict[str, object]]:
    """The doses recorded by hand for a patient, standing or withdrawn, newest first."""
    return [
        dict(row._mapping)
        for row in conn.execute(
            select(
                o.c.id,
                o.c.dose_date,
                o.c.kind,
                o.c.note,
                o.c.recorded_by,
                o.c.created_at,
                o.c.revoked_at,
            )
            .where(o.c.patient_id == patient_id)
            .order_by(o.c.dose_date.desc(), o.c.id.desc())
        )
    ]
