"""WHO treatment outcomes: which one may be recorded when, and recording it (the course ends).

The outcomes (WHO, *Definitions and reporting framework for tuberculosis*, 2013 revision,
updated 2022): cured, treatment completed, treatment failed, died, lost to follow-up, not
evaluated. The timing rules, checked here so that no outcome is recorded too early:

* *treatment failed* is not offered before the fifth month of a treatment course (a smear or
  culture still positive at month 5 or later); for preventive treatment it means TB disease
  developed, at any time;
* *cured* (treatment courses only) and *treatment completed* once the planned end has come, or
  the regimen's completion rule is met;
* *lost to follow-up* once treatment was interrupted for two consecutive months or more
  (``Definitions.ltfu_days``); it is suggested as soon as that is so;
* *died* and *not evaluated* at any time in the course.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, select

from vot import schema
from vot.adherence import ledger
from vot.adherence.rules import STANDARD, Adherence, Definitions
from vot.db import audit, utcnow
from vot.treatment import courses
from vot.treatment.course import Course, patient_today

OUTCOMES = (
    "cured",
    "treatment_completed",
    "treatment_failed",
    "died",
    "lost_to_follow_up",
    "not_evaluated",
)
LABELS = {
    "cured": "Cured",
    "treatment_completed": "Treatment completed",
    "treatment_failed": "Treatment failed",
    "died": "Died",
    "lost_to_follow_up": "Lost to follow-up",
    "not_evaluated": "Not evaluated",
}
FAILED_FROM_MONTH = 5
r, p = schema.regimens, schema.patients


class OutcomeError(ValueError):
    """An outcome that may not be recorded (yet); the message says why and from when."""


def add_months(day: date, months: int) -> date:
    """The same day of the month ``months`` later (the month's last day when it has fewer)."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def refusal(
    course: Course, figures: Adherence, outcome: str, on: date, defs: Definitions
) -> str | None:
    """Why ``outcome`` may not be recorded on ``on`` for this course (None: it may)."""
    if outcome not in OUTCOMES:
        return f"the outcome is one of {', '.join(OUTCOMES)}, not {outcome!r}"
    kind = course.regimen.kind
    if outcome == "cured" and kind != "treatment":
        return f"'cured' is for treatment of TB disease; {course.regimen.id} is preventive"
    if (
        outcome in ("cured", "treatment_completed")
        and on < course.nominal_last
        and not figures.completed
    ):
        return (
            f"not allowed yet: the course is planned to end on {course.nominal_last} and its "
            "completion rule is not met"
        )
    failed_from = add_months(course.start, FAILED_FROM_MONTH)
    if outcome == "treatment_failed" and kind == "treatment" and on < failed_from:
        return f"not allowed yet: treatment failure is assessed from month 5 ({failed_from})"
    if outcome == "lost_to_follow_up" and figures.longest_gap_days < defs.ltfu_days:
        return (
            f"not allowed yet: the longest interruption is {figures.longest_gap_days} days; "
            f"lost to follow-up is {defs.ltfu_days} days (two consecutive months) or more"
        )
    return None


def suggested(course: Course, figures: Adherence, today: date, defs: Definitions) -> list[str]:
    """The outcomes that may be recorded today, in the order a supervisor would consider them."""
    return [o for o in OUTCOMES if refusal(course, figures, o, today, defs) is None]


@dataclass(frozen=True)
class Recorded:
    patient_id: int
    course_id: int
    outcome: str
    on: date


def record(
    conn: Connection,
    patient_id: int,
    outcome: str,
    by: str,
    on: date | None = None,
    replace: bool = False,
    now: datetime | None = None,
    defs: Definitions = STANDARD,
) -> Recorded:
    """Record the outcome of the patient's latest course on ``on`` (default: today where the
    patient lives); the course ends that day.

    Raises:
        OutcomeError: an unknown outcome, a date outside the course or still to come, an
            outcome not allowed yet, or one recorded already (unless ``replace``).
    """
    now = now or utcnow()
    timezone = conn.execute(select(p.c.timezone).where(p.c.id == patient_id)).scalar_one()
    today = patient_today(timezone, now)
    on = on or today
    course = courses.latest(conn, patient_id)
    current = conn.execute(select(r.c.outcome, r.c.outcome_date).where(r.c.id == course.id)).one()
    if current.outcome is not None and not replace:
        raise OutcomeError(
            f"an outcome is recorded already ({current.outcome} on {current.outcome_date}); "
            "record again with replace to correct it"
        )
    if on > today:
        raise OutcomeError(f"{on} has not come yet in the patient's time zone (today is {today})")
    if on < course.start:
        raise OutcomeError(f"{on} is before the course started ({course.start})")
    figures = ledger.for_patient(conn, patient_id, now, on, defs)
    why = refusal(course, figures, outcome, on, defs)
    if why is not None:
        raise OutcomeError(why)
    conn.execute(
        r.update()
        .where(r.c.id == course.id)
        .values(outcome=outcome, outcome_date=on, outcome_by=by, end_date=on)
    )
    audit(
        conn,
        by,
        "course.outcome",
        f"patient:{patient_id}",
        course=course.id,
        outcome=outcome,
        on=on.isoformat(),
        replaced=current.outcome,
    )
    return Recorded(patient_id, course.id, outcome, on)
