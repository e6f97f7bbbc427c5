"""The dose ledger read at scale: every figure of :func:`vot.adherence.rules.compute`, for many
patients at once, from each course's day ledger (:mod:`vot.treatment.days`).

One query reads each patient's latest course with its day string (a few hundred bytes), so a
national export reads about 100 bytes per dose day instead of every video; :func:`from_days`
then counts in memory. The tests hold :func:`from_days` to :func:`vot.adherence.rules.compute`
on random courses, and the day strings to the source tables.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Integer, and_, bindparam, exists, or_, select
from sqlalchemy.sql import ColumnElement

from vot import schema
from vot.adherence.rules import STANDARD, Adherence, Counting, Definitions
from vot.adherence.scope import EVERYONE, Scope, countings_of
from vot.db import utcnow
from vot.treatment import courses as course_store
from vot.treatment import days as ledger_days
from vot.treatment.course import Course, completion_offsets, due_offsets

PENDING = ledger_days.PENDING_STATUSES
p, r, c = schema.patients, schema.regimens, schema.clinics
TAKEN = ledger_days.TAKEN
COVERED = TAKEN | {ledger_days.EXCUSED, ledger_days.PENDING}
_STATE = ledger_days.CODES
_FILTERS = {
    "district": lambda: c.c.district == bindparam("scope_district"),
    "clinic": lambda: c.c.name == bindparam("scope_clinic"),
    "start_from": lambda: r.c.start_date >= bindparam("scope_start_from", type_=Date),
    "start_to": lambda: r.c.start_date <= bindparam("scope_start_to", type_=Date),
    "patient_id": lambda: p.c.id == bindparam("scope_patient_id", type_=Integer),
}


def latest_course() -> ColumnElement[bool]:
    """The condition that ``r`` is its patient's latest course (none starts after it)."""
    newer = schema.regimens.alias("r_newer")
    return ~exists().where(
        newer.c.patient_id == r.c.patient_id,
        or_(
            newer.c.start_date > r.c.start_date,
            and_(newer.c.start_date == r.c.start_date, newer.c.id > r.c.id),
        ),
    )


@functools.lru_cache(maxsize=64)
def courses_statement(shape: tuple[str, ...]) -> Any:
    """Each patient in scope with their latest course and its day string, in export order."""
    return (
        select(
            *course_store.COURSE_COLUMNS,
            r.c.days,
            r.c.end_reason,
            r.c.outcome,
            r.c.outcome_date,
            p.c.pseudonym,
            p.c.timezone,
            p.c.clinic_id,
            c.c.name.label("clinic"),
            c.c.district,
        )
        .select_from(p.join(r, r.c.patient_id == p.c.id).join(c, c.c.id == p.c.clinic_id))
        .where(latest_course(), *(_FILTERS[name]() for name in shape))
        .order_by(c.c.district, c.c.name, p.c.pseudonym)
    )


def _runs(chars: str, covered: frozenset[str]) -> int:
    """The longest run of characters not in ``covered``."""
    longest = run = 0
    for char in chars:
        run = 0 if char in covered else run + 1
        longest = max(longest, run)
    return longest


def _gap(covered_offsets: Sequence[int], days: int) -> int:
    """The most calendar days in a row, among the first ``days``, without a covered day."""
    edges = [-1, *covered_offsets, days]
    return max((b - a - 1 for a, b in zip(edges, edges[1:], strict=False)), default=0)


def _completed(course: Course, text: str, through: int, today: int | None, pct: int) -> bool:
    rule = completion_offsets(course, pct)
    excused = sum(1 for o in rule.planned if o < len(text) and text[o] == ledger_days.EXCUSED)
    needed = rule.doses if rule.doses is not None else len(rule.planned) - excused
    due = due_offsets(course, rule.window_last + 1)
    in_window = sum(
        1
        for o in due
        if o >= rule.start and (o <= through or o == today) and o < len(text) and text[o] in TAKEN
    )
    return in_window > 0 and needed <= in_window


def from_days(course: Course, text: str, when: Counting, defs: Definitions = STANDARD) -> Adherence:
    """Every figure of one course from its day string; equal to :func:`rules.compute`."""
    start, last = course.start, course.last
    end = (min(when.through, last) - start).days  # the last counted offset
    due = list(due_offsets(course, max(end + 1, 0)))
    chars = "".join(text[o] if o < len(text) else ledger_days.NOTHING for o in due)
    today = (when.today - start).days if when.today else None
    bonus = (
        today is not None
        and 0 <= today <= (last - start).days
        and course.scheduled(when.today)  # type: ignore[arg-type]
        and today < len(text)
        and text[today] in TAKEN
    )
    counted = chars + (text[today] if bonus and today is not None else "")
    taken = sum(counted.count(t) for t in TAKEN)
    covered = [o for o, ch in zip(due, chars, strict=True) if ch in COVERED]
    gap = _gap(covered, end + 1) if end >= 0 else 0
    intensive = [
        ch
        for o, ch in zip([*due, today] if bonus else due, counted, strict=True)
        if o is not None and o < defs.intensive_days and ch != ledger_days.EXCUSED
    ]
    taken_at = [o for o, ch in zip(due, chars, strict=True) if ch in TAKEN]
    if bonus and today is not None:
        taken_at.append(today)
    last_taken = start + timedelta(days=max(taken_at)) if taken_at else None
    excused = counted.count(ledger_days.EXCUSED)
    expected = len(counted) - excused
    return Adherence(
        course.patient_id,
        start,
        last,
        when.as_of,
        expected,
        taken,
        excused,
        counted.count(ledger_days.PENDING),
        counted.count(ledger_days.REJECTED),
        counted.count(ledger_days.UNCLEAR),
        chars.count(ledger_days.NOTHING),
        len(intensive),
        sum(1 for ch in intensive if ch in TAKEN),
        _runs(chars, COVERED),
        gap,
        last_taken,
        (min(when.as_of, last) - last_taken).days if last_taken else None,
        expected > 0 and taken * 100 < defs.below_pct * expected,
        gap >= defs.ltfu_days,
        _completed(course, text, (when.through - start).days, today, defs.completion_window_pct),
        counted.count(ledger_days.IN_PERSON),
        counted.count(ledger_days.PHONE),
    )


@dataclass(frozen=True)
class Row:
    """One patient's figures with what an analyst may see of them: no code, no name."""

    pseudonym: str
    clinic: str
    district: str
    end_reason: str | None
    adherence: Adherence
    regimen: str = ""
    outcome: str | None = None
    outcome_date: date | None = None
    clinic_id: int = 0


@dataclass(frozen=True)
class Counted:
    """One patient's row with what it was counted from: the course, its day string, the days."""

    row: Row
    course: Course
    text: str
    when: Counting


def rows(
    conn: Connection,
    now: datetime,
    as_of: date | None = None,
    scope: Scope = EVERYONE,
    defs: Definitions = STANDARD,
    limit: int | None = None,
    offset: int = 0,
) -> Iterator[Counted]:
    """Each patient in ``scope`` (export order) with their figures and what they come from."""
    query = courses_statement(scope.shape).limit(limit).offset(offset)
    found = list(conn.execute(query, scope.params))
    courses = course_store.courses(conn, found)
    countings = countings_of(found, now, as_of)
    for row, course in zip(found, courses, strict=True):
        text, when = row.days or "", countings[row.timezone]
        yield Counted(
            Row(
                row.pseudonym,
                row.clinic,
                row.district,
                row.end_reason,
                from_days(course, text, when, defs),
                course.regimen.id,
                row.outcome,
                row.outcome_date,
                row.clinic_id,
            ),
            course,
            text,
            when,
        )


def figures(
    conn: Connection,
    now: datetime,
    as_of: date | None = None,
    scope: Scope = EVERYONE,
    defs: Definitions = STANDARD,
    limit: int | None = None,
    offset: int = 0,
) -> list[Row]:
    """Every figure per patient in ``scope`` as of ``as_of`` (None: each patient's today)."""
    return [got.row for got in rows(conn, now, as_of, scope, defs, limit, offset)]


def for_patient(
    conn: Connection,
    patient_id: int,
    now: datetime | None = None,
    as_of: date | None = None,
    defs: Definitions = STANDARD,
) -> Adherence:
    """Figures of the patient's latest course as of ``now`` (default: this moment).

    Raises:
        LookupError: no such patient, or the patient has no course.
    """
    found = figures(conn, now or utcnow(), as_of, Scope(patient_id=patient_id), defs)
    if not found:
        raise LookupError(f"patient {patient_id} has no regimen")
    return found[0].adherence


def day_states(
    conn: Connection, patient_id: int, now: datetime, as_of: date | None = None
) -> list[tuple[date, str]]:
    """Each dose day of the patient's latest course with its state, as the day ledger holds it
    (states named as in :data:`vot.adherence.rules.STATES`)."""
    found = list(rows(conn, now, as_of, Scope(patient_id=patient_id)))
    if not found:
        return []
    course, text = found[0].course, found[0].text
    through = (found[0].when.through - course.start).days
    states = []
    for o in due_offsets(course, (course.last - course.start).days + 1):
        state = _STATE[text[o] if o < len(text) else ledger_days.NOTHING]
        if state == "missed" and o > through:
            state = "not_due"
        states.append((course.start + timedelta(days=o), state))
    return states
