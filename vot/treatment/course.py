"""A patient's treatment course: the regimens it follows, from which day, and which days a dose
is due. Pure values; :mod:`vot.treatment.courses` reads them from the database.

A course starts on its first regimen's first day. A regimen change (a change of drugs mid-course)
starts the new regimen on the day of the change, at its own first day; the days before keep the
regimen they had, so the history of expected doses stays as it was.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from vot.db import utcnow
from vot.treatment.regimens import RegimenDef

DAY = timedelta(days=1)


def patient_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date where the patient lives."""
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class Segment:
    """One regimen of a course, followed from ``start``."""

    start: date
    regimen: RegimenDef


@dataclass(frozen=True)
class CompletionRule:
    """Completion of a course: ``doses`` taken (None: every planned dose less excused ones) on
    scheduled days from ``start`` to ``window_last``; ``planned`` are the due days it plans."""

    start: date
    planned: tuple[date, ...]
    doses: int | None
    window_last: date


@dataclass(frozen=True)
class Course:
    """A treatment course (a ``regimens`` row) and the regimens it followed.

    Attributes:
        segments: the regimens in order of their start; the first starts on the course's start.
        doses_per_day: accepted videos a dose day needs to count as taken.
        end_date: the day the course ended early (an outcome recorded before its planned end).
    """

    id: int
    patient_id: int
    segments: tuple[Segment, ...]
    doses_per_day: int = 1
    end_date: date | None = None

    @property
    def start(self) -> date:
        return self.segments[0].start

    @property
    def regimen(self) -> RegimenDef:
        """The regimen followed now (the last one)."""
        return self.segments[-1].regimen

    @property
    def nominal_last(self) -> date:
        """The last planned day: the last regimen's start plus its length, less one."""
        last = self.segments[-1]
        return last.start + (last.regimen.length_days - 1) * DAY

    @property
    def last(self) -> date:
        """The last dose day: the planned one, or the day the course ended if earlier."""
        return min(self.nominal_last, self.end_date) if self.end_date else self.nominal_last

    @property
    def length_days(self) -> int:
        return (self.nominal_last - self.start).days + 1

    def segment_at(self, day: date) -> Segment | None:
        found = None
        for segment in self.segments:
            if segment.start <= day:
                found = segment
        return found

    def scheduled(self, day: date) -> bool:
        """Whether a dose is due on ``day`` under the regimen followed then (past the planned
        end, the last phase's schedule goes on: doses made up late)."""
        segment = self.segment_at(day)
        return segment is not None and segment.regimen.due(day, segment.start)

    def completion(self, window_pct: int) -> CompletionRule:
        """Completion is judged on the regimen followed last, from its start: its own rule, or
        every planned dose within ``window_pct`` percent of its length."""
        return _completion(self.segments[-1], window_pct)

    def span_last(self, window_pct: int) -> date:
        """The last day anything about this course is counted on (its completion window)."""
        return max(self.nominal_last, self.completion(window_pct).window_last)


@functools.lru_cache(maxsize=4096)
def _completion(segment: Segment, window_pct: int) -> CompletionRule:
    regimen, start = segment.regimen, segment.start
    length = regimen.length_days
    planned = tuple(d for d in (start + i * DAY for i in range(length)) if regimen.due(d, start))
    within = regimen.completion.within_days or (length * window_pct + 99) // 100
    return CompletionRule(start, planned, regimen.completion.doses, start + (within - 1) * DAY)


# A course's schedule, relative to its start: the start's weekday and each regimen with the
# offset it starts at. Courses of the same shape have the same due days at the same offsets.
Shape = tuple[int, tuple[tuple[int, RegimenDef], ...]]
_MONDAY = date(2024, 1, 1)


def shape(course: Course) -> Shape:
    start = course.start
    return start.weekday(), tuple(((s.start - start).days, s.regimen) for s in course.segments)


def canonical(key: Shape) -> Course:
    """A course of this shape (starting in a week of 2024)."""
    weekday, parts = key
    start = _MONDAY + weekday * DAY
    segments = tuple(Segment(start + offset * DAY, regimen) for offset, regimen in parts)
    return Course(0, 0, segments)


@functools.lru_cache(maxsize=4096)
def _due(key: Shape, days: int) -> tuple[int, ...]:
    course = canonical(key)
    return tuple(i for i in range(days) if course.scheduled(course.start + i * DAY))


def due_offsets(course: Course, days: int) -> tuple[int, ...]:
    """Offsets from the course's start (0 = its first day) of the due days among the first
    ``days``; cached by :func:`shape`, since most courses share one."""
    return _due(shape(course), days)


@dataclass(frozen=True)
class CompletionOffsets:
    """:class:`CompletionRule` as offsets from the course's start."""

    start: int
    planned: tuple[int, ...]
    doses: int | None
    window_last: int


@functools.lru_cache(maxsize=4096)
def _completion_offsets(key: Shape, window_pct: int) -> CompletionOffsets:
    course = canonical(key)
    rule = course.completion(window_pct)
    base = course.start
    return CompletionOffsets(
        (rule.start - base).days,
        tuple((d - base).days for d in rule.planned),
        rule.doses,
        (rule.window_last - base).days,
    )


def completion_offsets(course: Course, window_pct: int) -> CompletionOffsets:
    return _completion_offsets(shape(course), window_pct)
