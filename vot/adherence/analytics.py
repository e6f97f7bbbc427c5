"""The analysts' snapshot of the ledger, recomputed now and then; :mod:`vot.adherence.dashboard`
reads it.

:func:`refresh` recomputes, inside the database, every patient's figures (the same SQL as the
export) and twelve weeks of figures per clinic, district and nation; the dashboard then reads
small tables instead of the whole ledger. Each patient's whole export row is stored too, so
:func:`vot.adherence.export.snapshot_records` can serve the export as of the refresh.
"""

from __future__ import annotations

import bisect
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    and_,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from vot import schema
from vot.adherence import day_sql, export, ledger
from vot.adherence.rules import STANDARD, Definitions
from vot.adherence.scope import EVERYONE
from vot.db import as_utc, utcnow
from vot.treatment import days
from vot.treatment.course import DAY, due_offsets

logger = logging.getLogger(__name__)
WEEKS = 12
MAX_AGE = timedelta(minutes=15)
snap, weekly = schema.adherence_snapshot, schema.analytics_weekly
s, sc, rv, p, c = schema.submissions, schema.scores, schema.reviews, schema.patients, schema.clinics


class seconds_between(FunctionElement[float]):  # noqa: N801 (an SQL function)
    """Seconds from the second timestamp to the first."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({a}) - julianday({b})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({a} - {b}))"


def week_of(day: Any) -> Any:
    """The Monday (epoch day) of an epoch day's week."""
    return day - (day + 3) % 7


def _weeks(now: datetime) -> list[int]:
    monday = day_sql.to_epoch(now.date()) - now.date().weekday()
    return [monday - 7 * i for i in range(WEEKS - 1, -1, -1)]


Cells = dict[tuple[int, int], list[int]]  # (clinic id, week's epoch day) -> figures


def _add_weeks(cells: Cells, got: ledger.Counted, first: date) -> None:
    """Add one course's counted dose days (expected, taken) per (patient-local) week from the
    Monday ``first``: the ended dose days, and today's once taken, as the figures count them."""
    course, text, when = got.course, got.text, got.when
    start, last = course.start, course.last
    end = (min(when.through, last) - start).days
    due = due_offsets(course, max(end + 1, 0))
    clinic = got.row.clinic_id
    for o in due[bisect.bisect_left(due, (first - start).days) :]:
        char = text[o] if o < len(text) else days.NOTHING
        cell = cells.setdefault((clinic, _monday(start + o * DAY)), [0, 0])
        cell[0] += char != days.EXCUSED
        cell[1] += char in days.TAKEN
    today = when.today
    if today and start <= today <= last and today >= first and course.scheduled(today):
        o = (today - start).days
        if o < len(text) and text[o] in days.TAKEN:
            cell = cells.setdefault((clinic, _monday(today)), [0, 0])
            cell[0] += 1
            cell[1] += 1


def _monday(day: date) -> int:
    """The epoch day of the Monday of ``day``'s week."""
    return day_sql.to_epoch(day) - day.weekday()


def _workload_by_week(conn: Connection, since: datetime) -> Cells:
    """Videos, auto-accepted, decided, compared and agreed per clinic and (UTC) week."""
    got: Cells = {}
    arrived = week_of(day_sql.epoch_day(s.c.received_at))
    videos = (
        select(
            p.c.clinic_id,
            arrived,
            func.count(),
            func.sum(case((s.c.status == schema.AUTO_ACCEPTED, 1), else_=0)),
        )
        .select_from(s.join(p, p.c.id == s.c.patient_id))
        .where(s.c.received_at >= since)
        .group_by(p.c.clinic_id, arrived)
    )
    for clinic, ws, n, auto in conn.execute(videos):
        got[(clinic, ws)] = [n, int(auto or 0), 0, 0, 0]
    decided = week_of(day_sql.epoch_day(rv.c.created_at))
    sc2 = sc.alias("sc_newest")  # a video re-scored by a newer model: the newest score counts
    newest = select(func.max(sc2.c.id)).where(sc2.c.submission_id == s.c.id).scalar_subquery()
    sided = sc.c.decision.in_(("auto_accept", "reject"))
    agreed = or_(
        and_(sc.c.decision == "auto_accept", rv.c.verdict == "accept"),
        and_(sc.c.decision == "reject", rv.c.verdict == "reject"),
    )
    checked = (
        select(p.c.clinic_id, arrived, func.count())
        .select_from(rv.join(s, s.c.id == rv.c.submission_id).join(p, p.c.id == s.c.patient_id))
        .where(
            s.c.received_at >= since,
            rv.c.undone_at.is_(None),
            rv.c.previous_status == schema.AUTO_ACCEPTED,
        )
        .group_by(p.c.clinic_id, arrived)
    )
    for clinic, ws, n in conn.execute(checked):  # auto-accepted, then spot-checked
        got.setdefault((clinic, ws), [0, 0, 0, 0, 0])[1] += n
    reviews = (
        select(
            p.c.clinic_id,
            decided,
            func.sum(case((rv.c.previous_status == schema.REVIEW, 1), else_=0)),
            func.sum(case((and_(sided, rv.c.verdict != "unclear"), 1), else_=0)),
            func.sum(case((agreed, 1), else_=0)),
        )
        .select_from(
            rv.join(s, s.c.id == rv.c.submission_id)
            .join(p, p.c.id == s.c.patient_id)
            .outerjoin(sc, sc.c.id == newest)
        )
        .where(rv.c.created_at >= since, rv.c.undone_at.is_(None))
        .group_by(p.c.clinic_id, decided)
    )
    for clinic, ws, n, compared, agree in conn.execute(reviews):
        cell = got.setdefault((clinic, ws), [0, 0, 0, 0, 0])
        cell[2:] = [int(n or 0), int(compared or 0), int(agree or 0)]
    return got


def _median_decision(conn: Connection, since: datetime) -> dict[tuple[str, str, int], float]:
    """Median seconds from arrival to a supervisor's decision, per scope and (UTC) week."""
    found: dict[tuple[str, str, int], float] = {}
    everyone: Any = literal_column("''")
    for scope, key in (("all", everyone), ("district", c.c.district), ("clinic", c.c.name)):
        week = week_of(day_sql.epoch_day(rv.c.created_at))
        seconds = seconds_between(rv.c.created_at, s.c.received_at)
        ranked = (
            select(
                key.label("k"),
                week.label("ws"),
                seconds.label("v"),
                func.row_number().over(partition_by=[key, week], order_by=seconds).label("rn"),
                func.count().over(partition_by=[key, week]).label("n"),
            )
            .select_from(
                rv.join(s, s.c.id == rv.c.submission_id)
                .join(p, p.c.id == s.c.patient_id)
                .join(c, c.c.id == p.c.clinic_id)
            )
            .where(
                rv.c.created_at >= since,
                rv.c.undone_at.is_(None),
                rv.c.previous_status == schema.REVIEW,
            )
            .subquery()
        )
        middle = ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
        for k, ws, median in conn.execute(
            select(ranked.c.k, ranked.c.ws, func.avg(ranked.c.v))
            .where(middle)
            .group_by(ranked.c.k, ranked.c.ws)
        ):
            found[(scope, k, ws)] = float(median)
    return found


def refresh(conn: Connection, now: datetime, defs: Definitions = STANDARD) -> datetime:
    """Recompute the snapshot and the weekly figures in the caller's transaction; returns
    ``now``, the time they are computed at.

    Everything is read first and written at the end, so the write lock (all of SQLite's) is
    held for the writing only, not for the minutes a national computation takes.
    """
    first = _weeks(now)[0]
    patients, adherence = _snapshot(conn, now, defs, first)
    since = datetime.combine(day_sql.from_epoch(first), datetime.min.time(), UTC)
    with day_sql.tuned(conn, streaming=False):
        workload = _workload_by_week(conn, since)
        medians = _median_decision(conn, since)
    if conn.dialect.name == "postgresql":  # one writer at a time; readers carry on
        conn.execute(text("LOCK TABLE adherence_snapshot, analytics_weekly IN EXCLUSIVE MODE"))
    conn.execute(delete(snap))
    for start in range(0, len(patients), 5000):
        conn.execute(snap.insert(), patients[start : start + 5000])
    _weekly(conn, now, first, adherence, workload, medians)
    logger.info("adherence snapshot refreshed for %s: %s patients", now, len(patients))
    return now


def _snapshot(
    conn: Connection, now: datetime, defs: Definitions, first: int
) -> tuple[list[dict[str, Any]], Cells]:
    """Every patient's snapshot row, with the export's row, and the counted dose days per
    clinic and week from the Monday ``first`` (epoch day): one pass over the day ledger."""
    patients: list[dict[str, Any]] = []
    cells: Cells = {}
    for got in ledger.rows(conn, now, None, EVERYONE, defs):
        row, a = got.row, got.row.adherence
        patients.append(
            dict(
                patient_id=a.patient_id,
                clinic_id=row.clinic_id,
                regimen_start=a.regimen_start,
                as_of=a.as_of,
                expected=a.expected,
                taken=a.taken,
                excused=a.excused,
                missed=a.missed,
                longest_missed_run=a.longest_missed_run,
                flag_below=a.flag_below,
                flag_ltfu=a.flag_ltfu,
                completed=a.completed,
                computed_at=now,
                pseudonym=row.pseudonym,
                clinic=row.clinic,
                district=row.district,
                record=json.dumps(export.record(row, defs)),
            )
        )
        _add_weeks(cells, got, day_sql.from_epoch(first))
    for clinic in {row["clinic_id"] for row in patients}:  # every week, even an empty one
        for week in range(first, first + 7 * WEEKS, 7):
            cells.setdefault((clinic, week), [0, 0])
    return patients, cells


def _weekly(
    conn: Connection,
    now: datetime,
    first: int,
    adherence: Cells,
    workload: Cells,
    medians: dict[tuple[str, str, int], float],
) -> None:
    """Sum the per-clinic weeks into every scope (all, district, clinic) and store them."""
    clinics = {
        cid: (name, district)
        for cid, name, district in conn.execute(select(c.c.id, c.c.name, c.c.district))
    }
    totals: dict[tuple[str, str, int], list[int]] = {}
    for parts, width, offset in ((adherence, 2, 0), (workload, 5, 2)):
        for (clinic, ws), values in parts.items():
            name, district = clinics[clinic]
            for key in (("all", "", ws), ("district", district, ws), ("clinic", name, ws)):
                cell = totals.setdefault(key, [0] * 7)
                for i in range(width):
                    cell[offset + i] += values[i]
    conn.execute(delete(weekly))
    rows = [
        dict(
            scope=scope,
            scope_key=key,
            week_start=day_sql.from_epoch(ws),
            expected=v[0],
            taken=v[1],
            videos=v[2],
            auto_accepted=v[3],
            decided=v[4],
            median_decision_s=medians.get((scope, key, ws)),
            compared=v[5],
            agreed=v[6],
            computed_at=now,
        )
        for (scope, key, ws), v in sorted(totals.items())
        if ws >= first
    ]
    if rows:
        conn.execute(weekly.insert(), rows)


def computed_at(conn: Connection) -> datetime | None:
    return as_utc(conn.execute(select(func.max(snap.c.computed_at))).scalar())


def refresh_if_older(engine: Engine, max_age: timedelta) -> bool:
    """Recompute the snapshot when it is missing or older than ``max_age``; whether it did.

    The age is read in a short transaction of its own, so nothing is held while it is
    recomputed (minutes at national scale).
    """
    with engine.connect() as conn:
        at = computed_at(conn)
    if at is not None and utcnow() - at < max_age:
        return False
    with engine.begin() as conn:
        refresh(conn, utcnow())
    return True
