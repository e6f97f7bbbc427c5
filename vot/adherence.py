"""Adherence per regimen: which dose days were taken, and the figures a supervisor needs.

The definitions, used everywhere a figure is shown:

* A dose day is *expected* once it has ended in the patient's time zone, from the regimen's
  start to its last day (start + length - 1); today counts only once a dose is taken today.
* A day is *taken* when at least one of its submissions was accepted by a supervisor or
  auto-accepted and not overturned.
* adherence = taken / expected (None while nothing is expected yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from vot import schema
from vot.db import utcnow


@dataclass(frozen=True)
class Adherence:
    patient_id: int
    regimen_start: date
    regimen_end: date
    as_of: date
    expected: int
    taken: int

    @property
    def rate(self) -> float | None:
        return self.taken / self.expected if self.expected else None


def expected_days(start: date, length_days: int, today: date, taken_today: bool) -> int:
    """Dose days expected so far: the ended days of the regimen, plus today if taken."""
    last = start + timedelta(days=length_days - 1)
    if today < start:
        return 0
    ended = (min(today - timedelta(days=1), last) - start).days + 1
    return max(0, ended) + (1 if taken_today and today <= last else 0)


def patient_today(timezone: str, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


def for_patient(conn: Connection, patient_id: int, now: datetime | None = None) -> Adherence:
    """Adherence of the patient's latest regimen as of ``now`` (default: this moment)."""
    p, r, s = schema.patients, schema.regimens, schema.submissions
    row = conn.execute(
        select(p.c.timezone, r.c.start_date, r.c.length_days)
        .join(r, r.c.patient_id == p.c.id)
        .where(p.c.id == patient_id)
        .order_by(r.c.start_date.desc())
        .limit(1)
    ).one()
    timezone, start, length = row
    today = patient_today(timezone, now)
    last = start + timedelta(days=length - 1)
    taken_days = set(
        conn.execute(
            select(func.distinct(s.c.dose_date)).where(
                s.c.patient_id == patient_id,
                s.c.status.in_(schema.TAKEN_STATUSES),
                s.c.dose_date >= start,
                s.c.dose_date <= min(today, last),
            )
        ).scalars()
    )
    expected = expected_days(start, length, today, today in taken_days)
    return Adherence(patient_id, start, last, today, expected, len(taken_days))
