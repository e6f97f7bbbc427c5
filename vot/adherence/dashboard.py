"""The analysts' dashboard, read from the snapshot :mod:`vot.adherence.analytics` keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from vot import schema
from vot.adherence.analytics import computed_at
from vot.adherence.outcomes import OUTCOMES

snap, weekly = schema.adherence_snapshot, schema.analytics_weekly
c, p = schema.clinics, schema.patients


@dataclass(frozen=True)
class Dashboard:
    computed_at: datetime | None
    scope: dict[str, str | None]
    summary: dict[str, Any]
    distribution: list[dict[str, Any]]  # patients per adherence band of 10 points
    groups: list[dict[str, Any]]  # per district (national view) or per clinic
    weeks: list[dict[str, Any]]
    cohorts: list[dict[str, Any]] = field(default_factory=list)  # outcomes by quarter of start


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_KEYS = ("patients", "expected", "taken", "below", "ltfu", "completed")


def _cells(conn: Connection, district: str | None, clinic: str | None) -> list[Any]:
    """Per group (district, or clinic within a scope) and adherence band of 10 points: the
    counts of :data:`_KEYS`, from one scan of the snapshot."""
    where = [c.c.district == district] if district else []
    where += [c.c.name == clinic] if clinic else []
    group = c.c.name if district or clinic else c.c.district
    band = case(
        (snap.c.expected == 0, -1),
        (snap.c.taken >= snap.c.expected, 9),
        else_=snap.c.taken * 10 // snap.c.expected,
    )
    return list(
        conn.execute(
            select(
                group,
                band,
                func.count(),
                func.sum(snap.c.expected),
                func.sum(snap.c.taken),
                func.sum(case((snap.c.flag_below, 1), else_=0)),
                func.sum(case((snap.c.flag_ltfu, 1), else_=0)),
                func.sum(case((snap.c.completed, 1), else_=0)),
            )
            .select_from(snap.join(c, c.c.id == snap.c.clinic_id))
            .where(*where)
            .group_by(group, band)
            .order_by(group, band)
        )
    )


def _figures(sums: list[int]) -> dict[str, Any]:
    got: dict[str, Any] = dict(zip(_KEYS, sums, strict=True))
    got["adherence"] = _share(got["taken"], got["expected"])
    return got


def _weeks(conn: Connection, scope: str, key: str) -> list[dict[str, Any]]:
    return [
        {
            "week_start": w.week_start.isoformat(),
            "adherence": _share(w.taken, w.expected),
            "expected": w.expected,
            "taken": w.taken,
            "videos": w.videos,
            "auto_accepted_share": _share(w.auto_accepted, w.videos),
            "decided": w.decided,
            "median_decision_s": w.median_decision_s,
            "agreement": _share(w.agreed, w.compared),
            "compared": w.compared,
        }
        for w in conn.execute(
            select(weekly)
            .where(weekly.c.scope == scope, weekly.c.scope_key == key)
            .order_by(weekly.c.week_start)
        )
    ]


def dashboard(
    conn: Connection, district: str | None = None, clinic: str | None = None
) -> Dashboard:
    """The dashboard of the nation, a district or a clinic, read from the snapshot.

    The summary, the distribution and the groups come from one scan of the snapshot, counted
    per group and adherence band (three scans cost three times as much at national scale).
    """
    total, by_band = [0] * len(_KEYS), [0] * 10
    by_group: dict[str | None, list[int]] = {}
    for name, b, *values in _cells(conn, district, clinic):
        counts = [int(v or 0) for v in values]
        sums = by_group.setdefault(name, [0] * len(_KEYS))
        for i, v in enumerate(counts):
            sums[i] += v
            total[i] += v
        if 0 <= b <= 9:
            by_band[b] += counts[0]
    distribution = [{"band": f"{10 * b}-{10 * b + 10}%", "patients": by_band[b]} for b in range(10)]
    groups = [{"name": name, **_figures(sums)} for name, sums in by_group.items()]
    scope, key = (
        ("clinic", clinic) if clinic else ("district", district) if district else ("all", "")
    )
    return Dashboard(
        computed_at(conn),
        {"district": district, "clinic": clinic},
        _figures(total),
        distribution,
        groups,
        _weeks(conn, scope, key or ""),
        cohorts(conn, district, clinic),
    )


def quarter(day: date) -> str:
    """The quarter a day falls in, as DHIS2 and WHO reports name it: ``2026Q3``."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def cohorts(
    conn: Connection, district: str | None = None, clinic: str | None = None
) -> list[dict[str, Any]]:
    """Treatment outcomes by cohort: courses by the quarter they started in, newest first.

    Each cohort counts every course that started in it (``started``), those with each WHO
    outcome, and those with none yet (``no_outcome``: treatment goes on, or it was not
    recorded). Read live from the courses, a small query: one row per start day and outcome.
    """
    r = schema.regimens
    query = (
        select(r.c.start_date, r.c.outcome, func.count())
        .select_from(r.join(p, p.c.id == r.c.patient_id).join(c, c.c.id == p.c.clinic_id))
        .group_by(r.c.start_date, r.c.outcome)
    )
    if district:
        query = query.where(c.c.district == district)
    if clinic:
        query = query.where(c.c.name == clinic)
    found: dict[str, dict[str, Any]] = {}
    for start, outcome, n in conn.execute(query):
        name = quarter(start)
        row = found.setdefault(
            name, {"cohort": name, "started": 0, **dict.fromkeys(OUTCOMES, 0), "no_outcome": 0}
        )
        row["started"] += n
        row[outcome if outcome in OUTCOMES else "no_outcome"] += n
    return [found[name] for name in sorted(found, reverse=True)]


def districts(conn: Connection) -> list[tuple[str, list[str]]]:
    """Every district with its clinics' names, for the filters."""
    found: dict[str, list[str]] = {}
    for name, district in conn.execute(
        select(c.c.name, c.c.district).order_by(c.c.district, c.c.name)
    ):
        found.setdefault(district, []).append(name)
    return list(found.items())
