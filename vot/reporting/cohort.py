"""The WHO treatment-outcome cohort of a period: every course that started in it, by clinic,
by the regimen it started on, and by its outcome.

WHO reports a cohort's outcomes once they are all known: the quarterly report of outcomes is
usually made for the cohort registered twelve months earlier (*Definitions and reporting
framework for tuberculosis*, 2013 revision). The period is the user's choice; a course whose
outcome is not recorded yet counts as *not evaluated*, so the cohort size always equals the sum
of its outcomes (DHIS2's validation rule).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.reporting.period import Period
from vot.treatment import courses as course_store
from vot.treatment.regimens import RegimenDef

NOT_EVALUATED = "not_evaluated"
r, p, c = schema.regimens, schema.patients, schema.clinics


@dataclass(frozen=True)
class CohortCount:
    """How many courses of the cohort share a clinic, a starting regimen and an outcome."""

    clinic: str
    district: str
    regimen: RegimenDef  # the regimen the course started on (its registration)
    outcome: str  # a WHO outcome (vot.adherence.outcomes.OUTCOMES); not_evaluated if none yet
    courses: int


def _rows(conn: Connection, period: Period) -> Iterator[Any]:
    query = (
        select(*course_store.COURSE_COLUMNS, r.c.outcome, c.c.name.label("clinic"), c.c.district)
        .select_from(r.join(p, p.c.id == r.c.patient_id).join(c, c.c.id == p.c.clinic_id))
        .where(r.c.start_date >= period.first, r.c.start_date <= period.last)
        .order_by(r.c.id)
    )
    yield from conn.execute(query)


def cohort(conn: Connection, period: Period, batch: int = 2000) -> list[CohortCount]:
    """The courses that started in ``period``, counted by clinic, starting regimen and outcome
    (ordered by district, clinic, regimen and outcome)."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    regimens: dict[str, RegimenDef] = {}
    rows = list(_rows(conn, period))
    for first in range(0, len(rows), batch):
        chunk = rows[first : first + batch]
        for row, course in zip(chunk, course_store.courses(conn, chunk), strict=True):
            started_on = course.segments[0].regimen  # changes from day one replace it
            regimens[started_on.id] = started_on
            outcome = row.outcome or NOT_EVALUATED
            counts[(row.district or "", row.clinic, started_on.id, outcome)] += 1
    return [
        CohortCount(clinic, district, regimens[rid], outcome, n)
        for (district, clinic, rid, outcome), n in sorted(counts.items())
    ]
