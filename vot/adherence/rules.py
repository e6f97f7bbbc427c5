"""Adherence per regimen: the definitions, as pure functions over one patient's dose days.

:func:`compute` is the readable definition of every figure; :mod:`vot.adherence.ledger` computes the
same figures in SQL for many patients at once, and the tests hold the two to agreement. The words
are in ``docs/adherence.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from vot.db import utcnow

# The dose weekdays (bit 0 = Monday) of a regimen observed on N days a week, unless it says.
DEFAULT_MASKS = {
    1: 0b0000001,
    2: 0b0001001,
    3: 0b0010101,
    4: 0b0011011,
    5: 0b0011111,
    6: 0b0111111,
    7: 0b1111111,
}
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


@dataclass(frozen=True)
class Regimen:
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


@dataclass(frozen=True)
class Day:
    """What the ledger holds for one dose day: accepted videos, and flags for the rest."""

    taken: int = 0  # accepted or auto-accepted (not overturned) videos
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

    @property
    def rate(self) -> float | None:
        return self.taken / self.expected if self.expected else None

    @property
    def intensive_share(self) -> float | None:
        return self.intensive_taken / self.intensive_expected if self.intensive_expected else None


def weekday_mask(days_per_week: int, mask: int | None = None) -> int:
    """A regimen's dose weekdays: its own mask, else the usual days for ``days_per_week``."""
    return mask if mask is not None else DEFAULT_MASKS.get(days_per_week, 0b1111111)


def patient_today(timezone: str, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


def counting(timezone: str, now: datetime | None = None, as_of: date | None = None) -> Counting:
    """The days that count for a patient in ``timezone``: up to ``as_of``, never past today."""
    today = patient_today(timezone, now)
    if as_of is not None and as_of < today:
        return Counting(as_of, None)
    return Counting(today - DAY, today)


def day_state(day: Day, doses_per_day: int, ended: bool) -> str:
    """One dose day's state; the first that applies wins, in the order of :data:`STATES`."""
    for state, applies in (
        ("taken", day.taken >= doses_per_day),
        ("excused", day.excused),
        ("pending", day.pending),
        ("unclear", day.unclear),
        ("rejected", day.rejected),
    ):
        if applies:
            return state
    return "missed" if ended else "not_due"


def _states(
    regimen: Regimen, days: Mapping[date, Day], when: Counting
) -> tuple[dict[date, str], int, int]:
    """Each counted dose day's state, the longest run of missed dose days and the longest gap
    (calendar days) without a covered day."""
    start, last, none = regimen.start, regimen.last, Day()
    states: dict[date, str] = {}
    gap = run = longest_gap = longest_run = 0
    day = start
    while day <= min(when.through, last):  # calendar days: a gap counts each, a run dose days
        gap += 1
        if regimen.scheduled(day):
            states[day] = state = day_state(days.get(day, none), regimen.doses_per_day, True)
            gap, run = (0, 0) if state in COVERED else (gap, run + 1)
        longest_gap, longest_run = max(longest_gap, gap), max(longest_run, run)
        day += DAY
    today = when.today
    if (
        today
        and start <= today <= last
        and regimen.scheduled(today)
        and day_state(days.get(today, none), regimen.doses_per_day, False) == "taken"
    ):
        states[today] = "taken"
    return states, longest_run, longest_gap


def _completed(regimen: Regimen, days: Mapping[date, Day], when: Counting, window_pct: int) -> bool:
    """Every planned dose (less excused ones) taken within the allowed window."""
    start, none, dpd = regimen.start, Day(), regimen.doses_per_day
    window = (regimen.length_days * window_pct + 99) // 100
    nominal = [start + i * DAY for i in range(regimen.length_days)]
    planned = sum(1 for d in nominal if regimen.scheduled(d))
    excused = sum(
        1
        for d in nominal
        if regimen.scheduled(d) and day_state(days.get(d, none), dpd, True) == "excused"
    )
    in_window = sum(
        1
        for i in range(window)
        if regimen.scheduled(d := start + i * DAY)
        and (d <= when.through or d == when.today)
        and days.get(d, none).taken >= dpd
    )
    return in_window > 0 and planned - excused <= in_window


def compute(
    patient_id: int,
    regimen: Regimen,
    days: Mapping[date, Day],
    when: Counting,
    defs: Definitions = STANDARD,
) -> Adherence:
    """Every figure for one regimen from its dose days (days without an entry had nothing)."""
    states, longest_run, longest_gap = _states(regimen, days, when)
    counts = {s: sum(1 for v in states.values() if v == s) for s in STATES}
    intensive_end = regimen.start + (defs.intensive_days - 1) * DAY
    intensive = [s for d, s in states.items() if d <= intensive_end and s != "excused"]
    last_taken = max((d for d, s in states.items() if s == "taken"), default=None)
    expected = len(states) - counts["excused"]
    return Adherence(
        patient_id,
        regimen.start,
        regimen.last,
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
        (min(when.as_of, regimen.last) - last_taken).days if last_taken else None,
        expected > 0 and counts["taken"] * 100 < defs.below_pct * expected,
        longest_gap >= defs.ltfu_days,
        _completed(regimen, days, when, defs.completion_window_pct),
    )
