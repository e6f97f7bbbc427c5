"""Adherence exports: CSV (a header row, then one row per patient) or JSON (metadata and rows).

The CSV holds data only, so every CSV tool reads it as it is. What the figures mean (the as-of
rule, the definitions, the filters) travels beside it: in the JSON form, in the HTTP headers of
the CSV download, and in ``vot export adherence --meta FILE``. Rows are ordered by district,
clinic and pseudonym, so the same data give the same file. No column holds a name or a code.

Two sources give the same rows: ``live`` computes them from the whole ledger now (:func:`records`,
about half a minute nationally); ``snapshot`` reads the rows :func:`vot.adherence.analytics.refresh`
stored (:func:`snapshot_records`), as of that refresh, which the metadata states.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import Connection, func, select

from vot import schema
from vot.adherence import ledger
from vot.adherence.rules import STANDARD, Definitions
from vot.adherence.scope import EVERYONE, Scope
from vot.db import as_utc

FORMATS = ("csv", "json")
SOURCES = ("live", "snapshot", "auto")  # auto: the snapshot when it can answer, else live
snap = schema.adherence_snapshot


class NoSnapshot(LookupError):
    """There is no snapshot to export from (never refreshed, or refreshed before version 7)."""


class SnapshotAsOf(ValueError):
    """A snapshot export was asked for a date of its own: only a live export can count to it."""


def columns(defs: Definitions) -> tuple[str, ...]:
    return (
        "pseudonym",
        "clinic",
        "district",
        "regimen_start",
        "regimen_end",
        "end_reason",
        "as_of",
        "expected",
        "taken",
        "adherence",
        "excused",
        "pending",
        "rejected",
        "unclear",
        "missed",
        "intensive_expected",
        "intensive_taken",
        "intensive_share",
        "longest_missed_run",
        "longest_gap_days",
        "days_since_taken",
        f"flag_below_{defs.below_pct}",
        "flag_ltfu",
        "completed",
        "regimen",
        "outcome",
        "in_person",
        "phone",
    )


def definitions(defs: Definitions) -> dict[str, Any]:
    """The definitions behind every column, in words, with the thresholds in force."""
    return {
        "thresholds": asdict(defs),
        "dose_day": "a day of the course on which its regimen's schedule (daily, weekly on "
        "the phase's first weekday, or given weekdays) has a dose due, from its start to its "
        "last day (the planned end, or the day it ended if earlier)",
        "expected": "dose days that have ended in the patient's time zone by as_of (as_of "
        "itself once a dose is taken on it), less excused days",
        "taken": "expected dose days with at least doses_per_day videos accepted by a "
        "supervisor or auto-accepted and not overturned, or a dose watched in person or "
        "confirmed by phone",
        "adherence": "taken / expected, a fraction 0..1; empty while nothing is expected",
        "states": "each ended dose day is exactly one of taken, excused, pending (video not yet "
        "decided), unclear (re-record asked), rejected, missed (nothing recorded)",
        "intensive_share": f"taken / expected over the first {defs.intensive_days} days",
        "longest_missed_run": "most consecutive ended dose days none of which was taken, "
        "excused or pending",
        "longest_gap_days": "most consecutive calendar days without a taken, excused or "
        "pending dose day",
        "days_since_taken": "from the last taken dose to as_of (or the regimen's last day)",
        f"flag_below_{defs.below_pct}": f"1 when adherence is below {defs.below_pct}%",
        "flag_ltfu": f"1 when longest_gap_days >= {defs.ltfu_days} (two months without a "
        "dose: lost to follow-up, WHO)",
        "completed": "1 when the doses the regimen asks for were taken in its window: its own "
        "rule (3HP: 11 of 12 weekly doses within 16 weeks; 4R: 120 doses within 6 months; "
        "1HP: 28 doses within 6 weeks), else every planned dose day, less excused ones, "
        f"within {defs.completion_window_pct}% of the regimen's length",
        "regimen": "the regimen followed now (vot regimen list); days before a change keep "
        "the regimen they had",
        "outcome": "the WHO treatment outcome recorded when the course ended (cured, "
        "treatment_completed, treatment_failed, died, lost_to_follow_up, not_evaluated); "
        "empty while treatment goes on",
        "in_person": "taken days watched in person by a health worker (no accepted video)",
        "phone": "taken days confirmed by phone after a video could not be used (no accepted "
        "video, none watched in person)",
        "as_of_rule": "figures count dose days up to as_of in each patient's time zone, with "
        "the verdicts in force when exported; as_of is the requested date, or "
        "the patient's today when none was requested or it is still to come",
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def record(row: ledger.Row, defs: Definitions) -> dict[str, Any]:
    """One row as JSON-ready values: dates as YYYY-MM-DD, flags as 0/1."""
    a = row.adherence
    values = (
        row.pseudonym,
        row.clinic,
        row.district,
        a.regimen_start.isoformat(),
        a.regimen_end.isoformat(),
        row.end_reason,
        a.as_of.isoformat(),
        a.expected,
        a.taken,
        _share(a.taken, a.expected),
        a.excused,
        a.pending,
        a.rejected,
        a.unclear,
        a.missed,
        a.intensive_expected,
        a.intensive_taken,
        _share(a.intensive_taken, a.intensive_expected),
        a.longest_missed_run,
        a.longest_gap_days,
        a.days_since_taken,
        int(a.flag_below),
        int(a.flag_ltfu),
        int(a.completed),
        row.regimen,
        row.outcome,
        a.in_person,
        a.phone,
    )
    return dict(zip(columns(defs), values, strict=True))


def metadata(
    now: datetime,
    as_of: date | None,
    scope: Scope,
    defs: Definitions,
    rows: int,
    computed_at: datetime | None = None,
) -> dict[str, Any]:
    """What an export states about itself; ``computed_at``: when the snapshot it was read from
    was computed (None: computed live, at ``now``)."""
    filters = {
        k: (v.isoformat() if isinstance(v, date) else v)
        for k, v in asdict(scope).items()
        if v is not None and k != "patient_id"
    }
    return {
        "generated_at": now.isoformat(),
        "source": "live" if computed_at is None else "snapshot",
        "computed_at": (computed_at or now).isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "filters": filters,
        "rows": rows,
        "order": "district, clinic, pseudonym",
        "definitions": definitions(defs),
    }


def records(
    conn: Connection,
    now: datetime,
    as_of: date | None = None,
    scope: Scope = EVERYONE,
    defs: Definitions = STANDARD,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The export rows for ``scope`` (see :func:`vot.adherence.ledger.figures`)."""
    found = ledger.figures(conn, now, as_of, scope, defs, limit, offset)
    return [record(row, defs) for row in found]


_SNAPSHOT_FILTERS = {
    "district": lambda v: snap.c.district == v,
    "clinic": lambda v: snap.c.clinic == v,
    "start_from": lambda v: snap.c.regimen_start >= v,
    "start_to": lambda v: snap.c.regimen_start <= v,
    "patient_id": lambda v: snap.c.patient_id == v,
}


def snapshot_records(
    conn: Connection,
    as_of: date | None = None,
    scope: Scope = EVERYONE,
    defs: Definitions = STANDARD,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[datetime, list[dict[str, Any]]]:
    """The export rows for ``scope`` as :func:`vot.adherence.analytics.refresh` stored them, in the
    same order as :func:`records`, and when they were computed.

    They are the rows :func:`records` gives with no ``as_of`` at the time of the refresh.

    Raises:
        SnapshotAsOf: ``as_of`` was given; the snapshot counts up to each patient's day at the
            refresh, so only a live export can count to a date of one's choosing.
        NoSnapshot: there is none, or it was refreshed before the export rows were stored.
    """
    if as_of is not None:
        raise SnapshotAsOf(
            "the snapshot counts dose days up to each patient's day when it was refreshed; "
            "for figures as of a chosen date, export live (without the snapshot)"
        )
    at, missing = conn.execute(
        select(func.max(snap.c.computed_at), func.count().filter(snap.c.record.is_(None)))
    ).one()
    if at is None or missing:
        raise NoSnapshot(
            "there is no adherence snapshot with export rows; refresh it first "
            "(`vot analytics refresh`, or Refresh on the analyst dashboard)"
        )
    query = (
        select(snap.c.record)
        .where(*(_SNAPSHOT_FILTERS[name](getattr(scope, name)) for name in scope.shape))
        .order_by(snap.c.district, snap.c.clinic, snap.c.pseudonym)
        .limit(limit)
        .offset(offset)
    )
    rows = [json.loads(text) for text in conn.execute(query).scalars()]
    if rows and tuple(rows[0]) != columns(defs):
        raise NoSnapshot(
            "the snapshot was computed by an older vot or with other definitions; refresh it first"
        )
    computed_at = as_utc(at)
    assert computed_at is not None
    return computed_at, rows


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str], defs: Definitions) -> None:
    """A header row, then the rows; empty cells for missing values."""
    writer = csv.DictWriter(out, fieldnames=columns(defs), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def write_json(meta: dict[str, Any], rows: list[dict[str, Any]], out: IO[str]) -> None:
    json.dump({**meta, "rows": len(rows), "items": rows}, out, indent=1, sort_keys=False)
    out.write("\n")
