"""The follow-up list: whom a supervisor should call today, most in need first, and the calls.

A patient is on the list when, in their own time zone:

* no video came for yesterday's dose (``missed_yesterday``), or today's is still missing after
  the dose deadline (``late_today``, ``settings.dose_deadline``);
* their latest doses were missed in a row (``missed_run``, two or more: missed, rejected or
  unclear dose days since the last one taken, excused or waiting);
* their adherence is below 80 %;
* a video was rejected or judged unclear in the last week and nothing was recorded for that day
  since (``not_recorded_again``).

A patient who reported a serious side effect (severe, yellow eyes or skin, vision changes; see
:mod:`vot.outreach.side_effects`) is at the top until a supervisor acknowledges it. Patients
whose course ended with an outcome are not on it otherwise. Then the order: escalated patients
(``settings.escalate_after_missed`` or more doses missed in a row), then by doses missed in a
row, then missed yesterday or late today, then a video not recorded again, then below 80 %,
then lowest adherence; patients already reached today go after the others.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from vot import schema
from vot.adherence import ledger
from vot.adherence.scope import Scope
from vot.db import audit, inserted_id, utcnow
from vot.outreach import side_effects
from vot.outreach.side_effects import Report
from vot.review.scope import NotFound, Reviewer, ReviewError, in_clinic
from vot.treatment import days
from vot.treatment.course import due_offsets

RECENT = timedelta(days=7)  # how far back a rejected or unclear video still asks for a call
MAX_NOTE = 1000
CALLS_SHOWN = 5
REASONS = {
    "side_effect": "reported a serious side effect",
    "escalated": "escalated: doses missed in a row",
    "missed_run": "doses missed in a row",
    "missed_yesterday": "no video for yesterday's dose",
    "late_today": "no video yet today, past the deadline",
    "not_recorded_again": "video rejected or unclear, not recorded again",
    "below_80": "adherence below 80%",
}
fc, p = schema.followup_calls, schema.patients


@dataclass(frozen=True)
class Call:
    outcome: str
    note: str | None
    by: str
    at: datetime


@dataclass(frozen=True)
class FollowUp:
    """One patient on the list, with why and what was tried before."""

    patient_id: int
    code: str
    reasons: tuple[str, ...]  # keys of REASONS, most pressing first
    missed_run: int
    rate: float | None
    escalated: bool
    unresolved: tuple[date, ...]  # days with a rejected or unclear video not recorded again
    calls: tuple[Call, ...] = field(default=())
    reached_today: bool = False
    side_effects: tuple[Report, ...] = ()  # urgent reports not yet acknowledged

    @property
    def rank(self) -> tuple[object, ...]:
        return (
            not self.side_effects,  # at once, whoever was called today
            self.reached_today,
            not self.escalated,
            -self.missed_run,
            not ({"missed_yesterday", "late_today"} & set(self.reasons)),
            not self.unresolved,
            "below_80" not in self.reasons,
            self.rate if self.rate is not None else 1.0,
            self.code,
        )


def _missed_run(got: ledger.Counted) -> int:
    """Dose days missed in a row up to the last ended one (missed, rejected or unclear)."""
    course, text, when = got.course, got.text, got.when
    end = (min(when.through, course.last) - course.start).days
    run = 0
    for offset in reversed(due_offsets(course, max(end + 1, 0))):
        if (text[offset] if offset < len(text) else days.NOTHING) in ledger.COVERED:
            break
        run += 1
    return run


def _day_char(got: ledger.Counted, day: date | None) -> str | None:
    """The ledger's character of ``day`` when a dose is due on it, else None."""
    course, text = got.course, got.text
    if day is None or not course.start <= day <= course.last or not course.scheduled(day):
        return None
    offset = (day - course.start).days
    return text[offset] if offset < len(text) else days.NOTHING


def _reasons(got: ledger.Counted, now: datetime, deadline: time, escalate: int) -> FollowUp | None:
    when, figures = got.when, got.row.adherence
    run = _missed_run(got)
    local = now.astimezone(ZoneInfo(got.timezone))
    reasons = []
    if run >= escalate:
        reasons.append("escalated")
    elif run >= 2:  # one missed dose is yesterday's, said below
        reasons.append("missed_run")
    if _day_char(got, when.through) == days.NOTHING:
        reasons.append("missed_yesterday")
    if _day_char(got, when.today) == days.NOTHING and local.time() >= deadline:
        reasons.append("late_today")
    recent = [when.through - timedelta(days=i) for i in range(RECENT.days)]
    unresolved = tuple(d for d in recent if _day_char(got, d) in (days.REJECTED, days.UNCLEAR))
    if unresolved:
        reasons.append("not_recorded_again")
    if figures.flag_below:
        reasons.append("below_80")
    if not reasons:
        return None
    return FollowUp(
        figures.patient_id,
        got.code,
        tuple(reasons),
        run,
        figures.rate,
        run >= escalate,
        unresolved,
    )


def _calls(conn: Connection, patient_ids: list[int]) -> dict[int, list[Call]]:
    u = schema.users
    found: dict[int, list[Call]] = defaultdict(list)
    if not patient_ids:
        return found
    rows = conn.execute(
        select(fc.c.patient_id, fc.c.outcome, fc.c.note, u.c.username, fc.c.created_at)
        .select_from(fc.outerjoin(u, u.c.id == fc.c.user_id))
        .where(fc.c.patient_id.in_(patient_ids))
        .order_by(fc.c.patient_id, fc.c.id.desc())
    )
    for pid, outcome, note, by, at in rows:
        if len(found[pid]) < CALLS_SHOWN:
            found[pid].append(Call(outcome, note, by or "", at))
    return found


def follow_ups(
    conn: Connection,
    reviewer: Reviewer,
    now: datetime | None = None,
    deadline: str = "20:00",
    escalate_after: int = 3,
    clinic_id: int | None = None,
) -> list[FollowUp]:
    """The patients of the reviewer's clinic (or of ``clinic_id``, for an admin) to call, most
    in need first."""
    now = now or utcnow()
    clinic = reviewer.clinic_scope if reviewer.clinic_scope is not None else clinic_id
    hour, minute = (int(part) for part in deadline.split(":"))
    counted = list(ledger.rows(conn, now, None, Scope(clinic_id=clinic)))
    urgent = side_effects.open_urgent(conn, [got.row.adherence.patient_id for got in counted])
    found = []
    for got in counted:
        pid = got.row.adherence.patient_id
        item = None
        if got.row.outcome is None:
            item = _reasons(got, now, time(hour, minute), escalate_after)
        if pid in urgent:
            item = item or FollowUp(pid, got.code, (), 0, got.row.adherence.rate, False, ())
            item = replace(
                item, reasons=("side_effect", *item.reasons), side_effects=tuple(urgent[pid])
            )
        if item is not None:
            found.append(item)
    calls = _calls(conn, [f.patient_id for f in found])
    listed = []
    for item in found:
        mine = tuple(calls.get(item.patient_id, ()))
        reached = any(c.outcome == "reached" and _as_utc(c.at).date() == now.date() for c in mine)
        listed.append(replace(item, calls=mine, reached_today=reached))
    return sorted(listed, key=lambda f: f.rank)


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("UTC"))


def record_call(
    conn: Connection, reviewer: Reviewer, patient_id: int, outcome: str, note: str | None = None
) -> int:
    """Record a call to a patient (reached, no answer, wrong number, or a note); its id.

    Raises:
        ReviewError: an unknown outcome, a note too long, or a note call without a note.
        NotFound: no such patient in the reviewer's clinic.
    """
    if outcome not in schema.CALL_OUTCOMES:
        raise ReviewError(f"a call is one of {', '.join(schema.CALL_OUTCOMES)}, not {outcome!r}")
    text = " ".join((note or "").split()) or None
    if text and len(text) > MAX_NOTE:
        raise ReviewError(f"a note holds at most {MAX_NOTE} characters")
    if outcome == "note" and not text:
        raise ReviewError("write the note")
    query = in_clinic(select(p.c.id).where(p.c.id == patient_id), reviewer)
    if conn.execute(query).first() is None:
        raise NotFound(f"no patient {patient_id} for this reviewer")
    call_id = inserted_id(
        conn.execute(
            fc.insert().values(
                patient_id=patient_id,
                outcome=outcome,
                note=text,
                user_id=reviewer.id,
                created_at=utcnow(),
            )
        )
    )
    audit(conn, reviewer.username, "followup.call", f"patient:{patient_id}", outcome=outcome)
    return call_id
