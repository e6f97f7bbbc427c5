"""Patients' courses in the database: enrol on a regimen, change regimen mid-course, read them.

A course is a ``regimens`` row; its regimen changes are ``regimen_changes`` rows. Nothing is
deleted: a change to an earlier date than a later change supersedes that one (both stay, with
``superseded_at``), and every change is an audit-log entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.db import audit, inserted_id, utcnow
from vot.treatment import catalog
from vot.treatment.course import Course, Segment
from vot.treatment.regimens import (
    DEFAULT_REGIMEN,
    RegimenDef,
    RegimenError,
    custom,
    weekday_mask,
)

r, ch = schema.regimens, schema.regimen_changes
MANY = 1000  # ids in one IN (...) at most; changes are few, so past this all are read
COURSE_COLUMNS = (
    r.c.id,
    r.c.patient_id,
    r.c.start_date,
    r.c.length_days,
    r.c.doses_per_day,
    r.c.days_per_week,
    r.c.weekday_mask,
    r.c.end_date,
    r.c.regimen_id,
)


class CourseError(ValueError):
    """A change to a course that cannot be made; the message says why."""


def _first_regimen(row: Any, regimens: Mapping[str, RegimenDef]) -> RegimenDef:
    if row.regimen_id is not None:
        if row.regimen_id not in regimens:
            raise RegimenError(f"course {row.id} follows an unknown regimen {row.regimen_id!r}")
        return regimens[row.regimen_id]
    mask = weekday_mask(row.days_per_week, row.weekday_mask)
    return custom(row.length_days, [d for d in range(7) if mask >> d & 1])


def build(
    row: Any, changes: Iterable[tuple[date, str]], regimens: Mapping[str, RegimenDef]
) -> Course:
    """A course from its row (:data:`COURSE_COLUMNS`) and its standing changes."""
    segments = [Segment(row.start_date, _first_regimen(row, regimens))]
    for start, regimen_id in sorted(changes):
        segment = Segment(start, regimens[regimen_id])
        if start <= segments[0].start:
            segments = [segment]
        else:
            segments = [s for s in segments if s.start < start] + [segment]
    return Course(row.id, row.patient_id, tuple(segments), row.doses_per_day, row.end_date)


def _changes(conn: Connection, course_ids: Iterable[int]) -> dict[int, list[tuple[date, str]]]:
    found: dict[int, list[tuple[date, str]]] = defaultdict(list)
    ids = set(course_ids)
    if not ids:
        return found
    query = select(ch.c.course_id, ch.c.start_date, ch.c.regimen_id).where(
        ch.c.superseded_at.is_(None)
    )
    if len(ids) <= MANY:  # more would pass a database's limit of bound values: read them all
        query = query.where(ch.c.course_id.in_(sorted(ids)))
    for cid, start, rid in conn.execute(query):
        if cid in ids:
            found[cid].append((start, rid))
    return found


def courses(conn: Connection, rows: list[Any]) -> list[Course]:
    """The courses of these rows (:data:`COURSE_COLUMNS`), in their order."""
    regimens = catalog.catalog(conn)
    changes = _changes(conn, [row.id for row in rows])
    return [build(row, changes.get(row.id, ()), regimens) for row in rows]


def latest(conn: Connection, patient_id: int) -> Course:
    """The patient's latest course (the latest start).

    Raises:
        LookupError: no such patient, or the patient has no course.
    """
    row = conn.execute(
        select(*COURSE_COLUMNS)
        .where(r.c.patient_id == patient_id)
        .order_by(r.c.start_date.desc(), r.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise LookupError(f"patient {patient_id} has no regimen")
    return courses(conn, [row])[0]


def enrol(
    conn: Connection,
    patient_id: int,
    start: date,
    regimen_id: str | None,
    length_days: int | None,
    now: datetime,
) -> int:
    """Start a course on ``start``: of ``regimen_id``, or with ``length_days`` alone a daily
    course of that length (a shape no regimen describes); its id.

    Raises:
        RegimenError: no such regimen.
    """
    length = length_days or 0
    if regimen_id is not None:
        regimen_id = catalog.get(conn, regimen_id).id
        length = catalog.get(conn, regimen_id).length_days
    return inserted_id(
        conn.execute(
            r.insert().values(
                patient_id=patient_id,
                start_date=start,
                length_days=length,
                doses_per_day=1,
                days_per_week=7,
                regimen_id=regimen_id,
                days="",
                created_at=now,
            )
        )
    )


def change_regimen(
    conn: Connection,
    patient_id: int,
    regimen_id: str,
    start: date,
    actor: str,
    reason: str | None = None,
    today: date | None = None,
) -> Course:
    """Follow ``regimen_id`` from ``start`` on, in the patient's latest course; the course.

    The days before ``start`` keep the regimen they had. A change to a date on or before a
    later change supersedes it (it stays in the history).

    Raises:
        RegimenError: no such regimen.
        CourseError: the date is outside the course, or the course has ended with an outcome.
    """
    regimen = catalog.get(conn, regimen_id)
    course = latest(conn, patient_id)
    outcome = conn.execute(select(r.c.outcome).where(r.c.id == course.id)).scalar()
    if outcome is not None:
        raise CourseError(f"the course ended with the outcome {outcome}; it cannot change")
    last = max(course.nominal_last, today or start)
    if not course.start <= start <= last:
        raise CourseError(
            f"a change must fall within the course ({course.start} to {last}), not on {start}"
        )
    now = utcnow()
    conn.execute(
        ch.update()
        .where(ch.c.course_id == course.id, ch.c.start_date >= start, ch.c.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    note = (reason or "").strip()[:500] or None
    conn.execute(
        ch.insert().values(
            course_id=course.id,
            regimen_id=regimen.id,
            start_date=start,
            reason=note,
            created_by=actor,
            created_at=now,
        )
    )
    audit(
        conn,
        actor,
        "course.change_regimen",
        f"patient:{patient_id}",
        course=course.id,
        regimen=regimen.id,
        start=start.isoformat(),
        reason=note,
    )
    return latest(conn, patient_id)


def history(conn: Connection, course_id: int) -> list[dict[str, Any]]:
    """The course's regimen changes, standing or superseded, in the order they were made."""
    return [
        dict(row._mapping)
        for row in conn.execute(
            select(
                ch.c.regimen_id,
                ch.c.start_date,
                ch.c.reason,
                ch.c.created_by,
                ch.c.created_at,
                ch.c.superseded_at,
            )
            .where(ch.c.course_id == course_id)
            .order_by(ch.c.id)
        )
    ]


__all__ = ["DEFAULT_REGIMEN", "CourseError", "change_regimen", "courses", "enrol", "latest"]
