"""The dose ledger read at scale: every figure of :func:`vot.adherence.rules.compute`, for many
patients at once, from each course's day ledger (:mod:`vot.treatment.days`).

One query reads each patient's latest course with its day string (a few hundred bytes), so a
national export reads about 100 bytes per dose day instead of every video; :func:`from_days`
then counts in memory. The tests hold :func:`from_days` to :func:`vot.adherence.rules.compute`
on random courses, and the day strings to the source tables.
"""

from __future__ import annotations

import bisect
import functools
import operator
from collections.abc import Callable, Iterator, Sequence
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
from vot.treatment.course import (
    Course,
    Shape,
    canonical,
    completion_offsets,
    due_offsets,
    shape,
)

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
    "clinic_id": lambda: p.c.clinic_id == bindparam("scope_clinic_id", type_=Integer),
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
            p.c.code,
            p.c.timezone,
            p.c.clinic_id,
            c.c.name.label("clinic"),
            c.c.district,
        )
        .select_from(p.join(r, r.c.patient_id == p.c.id).join(c, c.c.id == p.c.clinic_id))
        .where(latest_course(), *(_FILTERS[name]() for name in shape))
        .order_by(c.c.district, c.c.name, p.c.pseudonym)
    )


# Covered days (taken, excused, pending) end a run of missed days; str.translate marks them.
_RUN_MARKS = str.maketrans({ch: " " if ch in COVERED else "x" for ch in ledger_days.CODES})
_NOTHING = ledger_days.NOTHING


def _runs(chars: str) -> int:
    """The longest run of characters that are not covered days."""
    return max(map(len, chars.translate(_RUN_MARKS).split()), default=0)


def _gap(covered_offsets: Sequence[int], days: int) -> int:
    """The most calendar days in a row, among the first ``days``, without a covered day."""
    edges = [-1, *covered_offsets, days]
    return max((b - a - 1 for a, b in zip(edges, edges[1:], strict=False)), default=0)


def _gatherer(offsets: Sequence[int]) -> Callable[[str], str]:
    """A function giving the characters of a string at ``offsets``, joined (fast: itemgetter)."""
    if not offsets:
        return lambda _text: ""
    pick = operator.itemgetter(*offsets)
    if len(offsets) == 1:
        return pick  # type: ignore[return-value]
    return lambda text: "".join(pick(text))


@dataclass(frozen=True)
class _Plan:
    """What every course of one shape counts from: its due offsets over the span its figures
    read, and its completion rule's; built once per shape (see :func:`course.shape`)."""

    span: int
    due: tuple[int, ...]
    gather: Callable[[str], str]
    planned: Callable[[str], str]
    doses: int | None
    planned_count: int
    window: tuple[int, int]  # indices into ``due`` of the completion window's first and last+1


@functools.lru_cache(maxsize=1024)
def _plan(key: Shape, pct: int) -> _Plan:
    course = canonical(key)
    rule = completion_offsets(course, pct)
    span = max((course.nominal_last - course.start).days, rule.window_last) + 1
    due = due_offsets(course, span)
    return _Plan(
        span,
        due,
        _gatherer(due),
        _gatherer(rule.planned),
        rule.doses,
        len(rule.planned),
        (bisect.bisect_left(due, rule.start), bisect.bisect_right(due, rule.window_last)),
    )


def _count_taken(chars: str) -> int:
    return (
        chars.count(ledger_days.VIDEO)
        + chars.count(ledger_days.IN_PERSON)
        + chars.count(ledger_days.PHONE)
    )


def from_days(course: Course, text: str, when: Counting, defs: Definitions = STANDARD) -> Adherence:
    """Every figure of one course from its day string; equal to :func:`rules.compute`."""
    plan = _plan(shape(course), defs.completion_window_pct)
    start, last = course.start, course.last
    padded = text.ljust(plan.span, _NOTHING)
    every = plan.gather(padded)
    end = (min(when.through, last) - start).days  # the last counted offset
    counted_days = bisect.bisect_right(plan.due, end)
    chars = every[:counted_days]
    today = (when.today - start).days if when.today else -1
    at = bisect.bisect_left(plan.due, today)
    bonus = (
        0 <= today <= (last - start).days
        and at < len(plan.due)
        and plan.due[at] == today
        and every[at] in TAKEN
    )
    counted = chars + every[at] if bonus else chars
    if end < 0:
        gap = 0
    elif counted_days == end + 1:  # every day so far was a dose day: a gap is a run of them
        gap = _runs(chars)
    else:
        covered = [plan.due[i] for i, ch in enumerate(chars) if ch in COVERED]
        gap = _gap(covered, end + 1)
    intensive = chars[: bisect.bisect_left(plan.due, defs.intensive_days)]
    if bonus and today < defs.intensive_days:
        intensive += every[at]
    last_at = max(chars.rfind(ch) for ch in TAKEN)
    last_offset = today if bonus else plan.due[last_at] if last_at >= 0 else None
    last_taken = start + timedelta(days=last_offset) if last_offset is not None else None
    excused = counted.count(ledger_days.EXCUSED)
    expected = len(counted) - excused
    taken = _count_taken(counted)
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
        chars.count(_NOTHING),
        len(intensive) - intensive.count(ledger_days.EXCUSED),
        _count_taken(intensive),
        _runs(chars),
        gap,
        last_taken,
        (min(when.as_of, last) - last_taken).days if last_taken else None,
        expected > 0 and taken * 100 < defs.below_pct * expected,
        gap >= defs.ltfu_days,
        _completed(plan, padded, every, (when.through - start).days, today),
        counted.count(ledger_days.IN_PERSON),
        counted.count(ledger_days.PHONE),
    )


def _completed(plan: _Plan, padded: str, every: str, through: int, today: int) -> bool:
    """The completion rule met on the days counted so far (see :func:`rules._completed`)."""
    needed = plan.doses
    if needed is None:
        needed = plan.planned_count - plan.planned(padded).count(ledger_days.EXCUSED)
    first, stop = plan.window
    counted = bisect.bisect_right(plan.due, through, first, stop)
    in_window = _count_taken(every[first:counted])
    at = bisect.bisect_left(plan.due, today, first, stop)
    if today > through and at < stop and plan.due[at] == today and every[at] in TAKEN:
        in_window += 1
    return in_window > 0 and needed <= in_window


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
    """One patient's row with what it was counted from: the course, its day string, the days;
    and, for the supervisor's pages only, the patient's code and time zone."""

    row: Row
    course: Course
    text: str
    when: Counting
    code: str = ""
    timezone: str = "UTC"


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
            row.code,
            row.timezone,
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
