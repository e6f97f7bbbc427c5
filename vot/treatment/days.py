"""The day ledger: what each day of a course holds, one character a day from its start.

Every figure of adherence is read from what each dose day holds: an accepted video, a dose
watched in person or confirmed by phone, an excusal, a video waiting, rejected or unclear, or
nothing. Finding that out from the submissions at national scale means reading every video; so
each course keeps it in ``regimens.days``, one character per day (:data:`CODES`), rewritten by
:func:`touch` in the same transaction as every change to what a day holds: a video received or
decided (:mod:`vot.pipeline.machine`, :mod:`vot.intake.ingest`), an excusal or an observed dose
(:mod:`vot.treatment.doses`). :func:`rebuild` writes the whole ledger from the source tables
(the schema migration, bulk loads), and the tests hold the two to agreement.

The characters say what a day holds, not whether a dose was due: that comes from the regimen
(:class:`vot.treatment.course.Course`), so a regimen change needs no rewrite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select

from vot import schema

VIDEO, IN_PERSON, PHONE, EXCUSED = "V", "I", "F", "X"
PENDING, UNCLEAR, REJECTED, NOTHING = "P", "U", "R", "."
TAKEN = frozenset((VIDEO, IN_PERSON, PHONE))
# The characters in the order a day's state is chosen (the first that applies), with the states
# of vot.adherence.rules.STATES they stand for.
CODES = {
    VIDEO: "taken",
    IN_PERSON: "taken",
    PHONE: "taken",
    EXCUSED: "excused",
    PENDING: "pending",
    UNCLEAR: "unclear",
    REJECTED: "rejected",
    NOTHING: "missed",
}
KIND_CODE = {"in_person": IN_PERSON, "phone": PHONE}
PENDING_STATUSES = (*schema.PROCESSING_STATUSES, schema.REVIEW)
MAX_OFFSET = 2000  # days after a course's start that its ledger covers

s, r, x, o = schema.submissions, schema.regimens, schema.excusals, schema.observed_doses


@dataclass
class DayHolds:
    """What the source tables hold for one patient's day."""

    accepted: int = 0  # accepted or auto-accepted videos
    statuses: frozenset[str] = frozenset()
    observed: frozenset[str] = frozenset()  # kinds of dose observed in person or by phone
    excused: bool = False


def code(day: DayHolds, doses_per_day: int) -> str:
    """The character of one day: the first that applies, in the order of :data:`CODES`."""
    if day.accepted >= doses_per_day:
        return VIDEO
    for kind in ("in_person", "phone"):
        if kind in day.observed:
            return KIND_CODE[kind]
    if day.excused:
        return EXCUSED
    if day.statuses & set(PENDING_STATUSES):
        return PENDING
    if schema.UNCLEAR in day.statuses:
        return UNCLEAR
    if schema.REJECTED in day.statuses:
        return REJECTED
    return NOTHING


def _holds(
    conn: Connection, patient_ids: Iterable[int], days: Iterable[date] | None = None
) -> dict[tuple[int, date], DayHolds]:
    """What each (patient, day) holds, for these patients (and days, when given)."""
    pids, wanted = sorted(set(patient_ids)), None if days is None else sorted(set(days))
    found: dict[tuple[int, date], DayHolds] = defaultdict(DayHolds)
    queries: list[tuple[Any, str]] = [
        (select(s.c.patient_id, s.c.dose_date, s.c.status), "status"),
        (
            select(x.c.patient_id, x.c.dose_date, x.c.reason).where(x.c.revoked_at.is_(None)),
            "excused",
        ),
        (select(o.c.patient_id, o.c.dose_date, o.c.kind).where(o.c.revoked_at.is_(None)), "kind"),
    ]
    for query, what in queries:
        table = query.get_final_froms()[0]
        query = query.where(table.c.patient_id.in_(pids))
        if wanted is not None:
            query = query.where(table.c.dose_date.in_(wanted))
        for pid, day, value in conn.execute(query):
            held = found[(pid, day)]
            if what == "status":
                held.statuses = held.statuses | {value}
                held.accepted += value in schema.TAKEN_STATUSES
            elif what == "excused":
                held.excused = True
            else:
                held.observed = held.observed | {value}
    return found


@dataclass(frozen=True)
class _Course:
    id: int
    start: date
    doses_per_day: int
    days: str


def _courses(conn: Connection, patient_id: int, lock: bool) -> list[_Course]:
    query = (
        select(r.c.id, r.c.start_date, r.c.doses_per_day, r.c.days)
        .where(r.c.patient_id == patient_id)
        .order_by(r.c.start_date, r.c.id)
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()  # two writers of one patient's days take turns
    return [
        _Course(row.id, row.start_date, row.doses_per_day, row.days or "")
        for row in conn.execute(query)
    ]


def course_for(courses: list[_Course], day: date) -> _Course | None:
    """The course a day belongs to: the latest one started on or before it."""
    found = None
    for course in courses:
        if course.start <= day and (day - course.start).days < MAX_OFFSET:
            found = course
    return found


def splice(days: str, changes: Mapping[int, str]) -> str:
    """``days`` with the characters at the given offsets replaced (padded with nothing)."""
    if not changes:
        return days
    chars = list(days.ljust(max(changes) + 1, NOTHING))
    for offset, char in changes.items():
        chars[offset] = char
    return "".join(chars).rstrip(NOTHING)


def touch(conn: Connection, pairs: Iterable[tuple[int, date]]) -> None:
    """Rewrite the characters of these (patient, day) pairs from the source tables.

    Call it in the transaction that changed what those days hold. Patients are locked in the
    order of their id, so writers of several patients cannot deadlock.
    """
    by_patient: dict[int, set[date]] = defaultdict(set)
    for pid, day in pairs:
        by_patient[pid].add(day)
    for pid in sorted(by_patient):
        courses = _courses(conn, pid, lock=True)
        if not courses:
            continue
        holds = _holds(conn, [pid], by_patient[pid])
        changes: dict[int, dict[int, str]] = defaultdict(dict)
        for day in by_patient[pid]:
            course = course_for(courses, day)
            if course is not None:
                held = holds.get((pid, day), DayHolds())
                changes[course.id][(day - course.start).days] = code(held, course.doses_per_day)
        for course in courses:
            if course.id in changes:
                new = splice(course.days, changes[course.id])
                if new != course.days:
                    conn.execute(r.update().where(r.c.id == course.id).values(days=new))


def rebuild(conn: Connection, patient_ids: Iterable[int] | None = None, batch: int = 2000) -> int:
    """Write the day ledger of every course (of ``patient_ids``) from the source tables;
    returns how many courses changed."""
    pids = (
        sorted(set(patient_ids))
        if patient_ids is not None
        else list(
            conn.execute(select(r.c.patient_id).distinct().order_by(r.c.patient_id)).scalars()
        )
    )
    changed = 0
    for first in range(0, len(pids), batch):
        chunk = pids[first : first + batch]
        holds = _holds(conn, chunk)
        courses: dict[int, list[_Course]] = defaultdict(list)
        for row in conn.execute(
            select(r.c.patient_id, r.c.id, r.c.start_date, r.c.doses_per_day, r.c.days)
            .where(r.c.patient_id.in_(chunk))
            .order_by(r.c.patient_id, r.c.start_date, r.c.id)
        ):
            courses[row.patient_id].append(
                _Course(row.id, row.start_date, row.doses_per_day, row.days or "")
            )
        changes: dict[int, dict[int, str]] = defaultdict(dict)
        for (pid, day), held in holds.items():
            course = course_for(courses.get(pid, []), day)
            if course is not None:
                changes[course.id][(day - course.start).days] = code(held, course.doses_per_day)
        for pid in chunk:
            for course in courses.get(pid, []):
                text = splice("", changes.get(course.id, {}))
                if text != course.days:
                    conn.execute(r.update().where(r.c.id == course.id).values(days=text))
                    changed += 1
    return changed


def day_of(start: date, offset: int) -> date:
    return start + timedelta(days=offset)
