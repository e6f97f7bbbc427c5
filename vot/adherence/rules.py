"""Adherence per course: the definitions, as pure functions over one patient's dose days.

:func:`compute` is the readable definition of every figure; :mod:`vot.adherence.ledger` computes
the same figures fast, for many patients at once, from each course's day ledger
(:mod:`vot.treatment.days`), and the tests hold the two to agreement. The words are in
``docs/adherence.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from vot.treatment.course import CompletionRule, patient_today

STATES = ("taken", "excused", "pending", "unclear", "rejected", "missed", "not_due")
COVERED = ("taken", "excused", "pending")  # days that end a run of missed days
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Definitions:
    """The programme's thresholds; the defaults are the usual TB programme ones."""

    below_pct: int = 80  # flag a patient whose adherence is below this percentage
    ltfu_days: int = 60  # two months without a dose: lost to follow-up (WHO)
    intensive_days: int = 56  # the intensive phase: the regimen's first 8 weeks
    completion_window_pct: int = 150  # all doses within 150% of the length (180 d in 270 d)


STANDARD = Definitions()


class Schedule(Protocol):
    """Which days a dose is due: a :class:`vot.treatment.course.Course`, or a :class:`Regimen`."""

    @property
    def start(self) -> date: ...

    @property
    def last(self) -> date:
        """The last dose day (the planned one, or the day the course ended if earlier)."""
        ...

    @property
    def doses_per_day(self) -> int: ...

    def scheduled(self, day: date) -> bool:
        """Whether a dose is due on ``day`` (bounds aside)."""
        ...

    def completion(self, window_pct: int) -> CompletionRule: ...


@dataclass(frozen=True)
class Regimen:
    """One length and a set of weekdays: the simplest :class:`Schedule`."""

    start: date
    length_days: int = 180
    doses_per_day: int = 1
    weekday_mask: int = 0b1111111
    end_date: date | None = None

    @property
    def last(self) -> date:
        """The regimen's last dose day: its nominal end, or the day it ended if earlier."""
        nominal = self.start + (self.length_days - 1) * DAY
        return min(nominal, self.end_date) if self.end_date else nominal

    def scheduled(self, day: date) -> bool:
        return bool(self.weekday_mask >> day.weekday() & 1)

    def completion(self, window_pct: int) -> CompletionRule:
        nominal = (self.start + i * DAY for i in range(self.length_days))
        window = (self.length_days * window_pct + 99) // 100
        planned = tuple(d for d in nominal if self.scheduled(d))
        return CompletionRule(self.start, planned, None, self.start + (window - 1) * DAY)


@dataclass(frozen=True)
class Day:
    """What the ledger holds for one dose day: accepted videos, and flags for the rest."""

    taken: int = 0  # accepted or auto-accepted (not overturned) videos
    observed: str | None = None  # a dose watched "in_person" or confirmed by "phone"
    excused: bool = False
    pending: bool = False  # received, being processed, or waiting for a supervisor
    unclear: bool = False
    rejected: bool = False


@dataclass(frozen=True)
class Counting:
    """Which days count: every day up to ``through`` has ended; ``today`` counts if taken."""

    through: date
    today: date | None

    @property
    def as_of(self) -> date:
        return self.today or self.through


@dataclass(frozen=True)
class Adherence:
    patient_id: int
    regimen_start: date
    regimen_end: date
    as_of: date
    expected: int
    taken: int
    excused: int = 0
    pending: int = 0
    rejected: int = 0
    unclear: int = 0
    missed: int = 0
    intensive_expected: int = 0
    intensive_taken: int = 0
    longest_missed_run: int = 0
    longest_gap_days: int = 0
    last_taken: date | None = None
    days_since_taken: int | None = None
    flag_below: bool = False
    flag_ltfu: bool = False
    completed: bool = False
    in_person: int = 0  # taken days watched in person (no accepted video)
    phone: int = 0  # taken days confirmed by phone (no accepted video, none in person)

    @property
    def rate(self) -> float | None:
        return self.taken / self.expected if self.expected else None

    @property
    def intensive_share(self) -> float | None:
        return self.intensive_taken / self.intensive_expected if self.intensive_expected else None


def counting(timezone: str, now: datetime | None = None, as_of: date | None = None) -> Counting:
    """The days that count for a patient in ``timezone``: up to ``as_of``, never past today."""
    today = patient_today(timezone, now)
    if as_of is not None and as_of < today:
        return Counting(as_of, None)
    return Counting(today - DAY, today)


def day_state(day: Day, doses_per_day: int, ended: bool) -> str:
    """One dose day's state; the first that applies wins, in the order of :data:`STATES`."""
    for state, applies in (
        ("taken", day.taken >= doses_per_day or day.observed is not None),
        ("excused", day.excused),
        ("pending", day.pending),
        ("unclear", day.unclear),
        ("rejected", day.rejected),
    ):
        if applies:
            return state
    return "missed" if ended else "not_due"


def taken(day: Day, doses_per_day: int) -> bool:
    return day.taken >= doses_per_day or day.observed is not None


def _states(
    schedule: Schedule, days: Mapping[date, Day], when: Counting
) -> tuple[dict[date, str], int, int]:
    """Each counted dose day's state, the longest run of missed dose days and the longest gap
    (calendar days) without a covered day."""
    start, last, none = schedule.start, schedule.last, Day()
    states: dict[date, str] = {}
    gap = run = longest_gap = longest_run = 0
    day = start
    while day <= min(when.through, last):  # calendar days: a gap counts each, a run dose days
        gap += 1
        if schedule.scheduled(day):
            states[day] = state = day_state(days.get(day, none), schedule.doses_per_day, True)
            gap, run = (0, 0) if state in COVERED else (gap, run + 1)
        longest_gap, longest_run = max(longest_gap, gap), max(longest_run, run)
        day += DAY
    today = when.today
    if (
        today
        and start <= today <= last
        and schedule.scheduled(today)
        and taken(days.get(today, none), schedule.doses_per_day)
    ):
        states[today] = "taken"
    return states, longest_run, longest_gap


def _completed(
    schedule: Schedule, days: Mapping[date, Day], when: Counting, window_pct: int
) -> bool:
    """The doses the completion rule asks for (by default every planned dose, less excused
    ones) taken on scheduled days within its window, counted up to today."""
    rule, none, dpd = schedule.completion(window_pct), Day(), schedule.doses_per_day
    excused = sum(1 for d in rule.planned if day_state(days.get(d, none), dpd, True) == "excused")
    needed = rule.doses if rule.doses is not None else len(rule.planned) - excused
    in_window, day = 0, rule.start
    while day <= rule.window_last:
        if (
            schedule.scheduled(day)
            and (day <= when.through or day == when.today)
            and taken(days.get(day, none), dpd)
        ):
            in_window += 1
        day += DAY
    return in_window > 0 and needed <= in_window


def _observed(states: Mapping[date, str], days: Mapping[date, Day], dpd: int) -> dict[str, int]:
    """Taken days by how they were seen, when not by an accepted video."""
    kinds = {"in_person": 0, "phone": 0}
    for day, state in states.items():
        held = days.get(day, Day())
        if state == "taken" and held.taken < dpd and held.observed in kinds:
            kinds[held.observed] += 1
    return kinds


def compute(
    patient_id: int,
    schedule: Schedule,
    days: Mapping[date, Day],
    when: Counting,
    defs: Definitions = STANDARD,
) -> Adherence:
    """Every figure for one course from its dose days (days without an entry had nothing)."""
    states, longest_run, longest_gap = _states(schedule, days, when)
    counts = {s: sum(1 for v in states.values() if v == s) for s in STATES}
    intensive_end = schedule.start + (defs.intensive_days - 1) * DAY
    intensive = [s for d, s in states.items() if d <= intensive_end and s != "excused"]
    last_taken = max((d for d, s in states.items() if s == "taken"), default=None)
    expected = len(states) - counts["excused"]
    observed = _observed(states, days, schedule.doses_per_day)
    return Adherence(
        patient_id,
        schedule.start,
        schedule.last,
        when.as_of,
        expected,
        counts["taken"],
        counts["excused"],
        counts["pending"],
        counts["rejected"],
        counts["unclear"],
        counts["missed"],
        len(intensive),
        intensive.count("taken"),
        longest_run,
        longest_gap,
        last_taken,
        (min(when.as_of, schedule.last) - last_taken).days if last_taken else None,
        expected > 0 and counts["taken"] * 100 < defs.below_pct * expected,
        longest_gap >= defs.ltfu_days,
        _completed(schedule, days, when, defs.completion_window_pct),
        observed["in_person"],
        observed["phone"],
    )
