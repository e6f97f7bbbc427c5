"""The dose ledger in SQL: every figure of :func:`vot.adherence.rules.compute`, for many patients at
once.

Days are numbered from 1970-01-01 (:class:`epoch_day`) so the date arithmetic reads the same on
SQLite and PostgreSQL. Only the days with a video or an excusal are read, once, grouped per day;
the days with nothing are counted by arithmetic over the weekday mask, never generated one by one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.sql import ColumnElement, Select

from vot import schema
from vot.adherence.day_sql import (
    dose_days,
    epoch_day,
    flag,
    from_epoch,
    is_dose_day,
    least,
    tuned,
)
from vot.adherence.rules import DEFAULT_MASKS, STANDARD, Adherence, Definitions
from vot.adherence.scope import EVERYONE, Scope, zone_params, zones
from vot.db import utcnow

PENDING = (*schema.PROCESSING_STATUSES, schema.REVIEW)
p, r, c, s, x = (
    schema.patients,
    schema.regimens,
    schema.clinics,
    schema.submissions,
    schema.excusals,
)


_FILTERS = {
    "district": lambda: c.c.district == bindparam("scope_district"),
    "clinic": lambda: c.c.name == bindparam("scope_clinic"),
    "start_from": lambda: r.c.start_date >= bindparam("scope_start_from", type_=Date),
    "start_to": lambda: r.c.start_date <= bindparam("scope_start_to", type_=Date),
    "patient_id": lambda: p.c.id == bindparam("scope_patient_id", type_=Integer),
}


def _where(shape: tuple[str, ...]) -> list[ColumnElement[bool]]:
    """Conditions over patients ``p``, their clinic ``c`` and their latest regimen ``r``."""
    newer = schema.regimens.alias("r_newer")  # the latest regimen: none starts after it
    latest = ~exists().where(
        newer.c.patient_id == r.c.patient_id,
        or_(
            newer.c.start_date > r.c.start_date,
            and_(newer.c.start_date == r.c.start_date, newer.c.id > r.c.id),
        ),
    )
    return [latest, *(_FILTERS[name]() for name in shape)]


def _per_zone(zones: tuple[str, ...], pick: str) -> ColumnElement[int]:
    if not zones:
        return cast(null(), Integer)
    whens = {tz: bindparam(f"{pick}_{i}", type_=Integer) for i, tz in enumerate(zones)}
    return cast(case(whens, value=p.c.timezone, else_=null()), Integer)


def regimens(zones: tuple[str, ...], shape: tuple[str, ...], defs: Definitions) -> Any:
    """One row per patient in scope: the latest regimen's bounds in epoch days.

    Bound parameters: :func:`zone_params` for ``zones``, :attr:`Scope.params` for ``shape``.
    """
    start = epoch_day(r.c.start_date)
    nominal = start + r.c.length_days - 1
    base = select(
        p.c.id.label("pid"),
        p.c.pseudonym,
        c.c.id.label("clinic_id"),
        c.c.name.label("clinic"),
        c.c.district,
        r.c.start_date,
        r.c.end_reason,
        start.label("start"),
        nominal.label("nominal"),
        case(
            (r.c.end_date.is_(None), nominal), else_=least(nominal, epoch_day(r.c.end_date))
        ).label("last"),
        (start + (r.c.length_days * defs.completion_window_pct + 99) // 100 - 1).label("wlast"),
        (start + defs.intensive_days - 1).label("iend"),
        func.coalesce(
            r.c.weekday_mask, case(DEFAULT_MASKS, value=r.c.days_per_week, else_=0b1111111)
        ).label("mask"),
        r.c.doses_per_day.label("dpd"),
        _per_zone(zones, "through").label("through"),
        _per_zone(zones, "today").label("today_raw"),
    ).select_from(p.join(r, r.c.patient_id == p.c.id).join(c, c.c.id == p.c.clinic_id))
    b = base.where(*_where(shape)).subquery("reg0")
    today = case((and_(b.c.today_raw >= b.c.start, b.c.today_raw <= b.c.last), b.c.today_raw))
    return select(
        *b.c,
        least(b.c.through, b.c.last).label("e"),
        today.label("today"),
        func.coalesce(b.c.today_raw, b.c.through).label("as_of"),
    ).cte("reg")


TAKEN, EXCUSED, PENDING_DAY, UNCLEAR, REJECTED, MISSED = 1, 2, 3, 4, 5, 6  # day states
ACCEPTED_RANK = 9  # a day's videos and excusal are ranked; the smallest rank but this one wins


def _rank() -> ColumnElement[int]:
    by_status = {status: ACCEPTED_RANK for status in schema.TAKEN_STATUSES}
    by_status.update({status: PENDING_DAY for status in PENDING})
    by_status.update({schema.UNCLEAR: UNCLEAR, schema.REJECTED: REJECTED})
    return case(by_status, value=s.c.status)


def recorded_days(reg: Any, narrow: bool, since: date | None = None) -> Any:
    """One row per (patient, day) with a video or an excusal, grouped in the index's order.

    ``nt`` counts the day's accepted videos; ``best`` is the smallest rank among the rest (an
    excusal, pending, unclear, rejected), or :data:`ACCEPTED_RANK` when there is none.
    ``narrow``: only read the days of the patients in ``reg`` (a filtered scope); a national
    query reads everything in index order instead, which streams without sorting. ``since``:
    only days from then on.
    """
    videos = select(s.c.patient_id.label("pid"), s.c.dose_date.label("day"), _rank().label("rank"))
    excused = select(x.c.patient_id, x.c.dose_date, literal(EXCUSED)).where(
        x.c.revoked_at.is_(None)
    )
    if narrow:
        videos = videos.where(s.c.patient_id.in_(select(reg.c.pid)))
        excused = excused.where(x.c.patient_id.in_(select(reg.c.pid)))
    if since is not None:
        videos = videos.where(s.c.dose_date >= since)
        excused = excused.where(x.c.dose_date >= since)
    raw = videos.union_all(excused).subquery("raw")
    return (
        select(
            raw.c.pid,
            raw.c.day,
            epoch_day(raw.c.day).label("d"),
            func.count().filter(raw.c.rank == ACCEPTED_RANK).label("nt"),
            func.min(raw.c.rank).label("best"),
        )
        .group_by(raw.c.pid, raw.c.day)
        .subquery("day")
    )


def day_flags(reg: Any, narrow: bool, since: date | None = None, gaps: bool = True) -> Any:
    """Each recorded dose day's state (a code) and, with ``gaps``, the covered day before it."""
    day = recorded_days(reg, narrow, since)
    taken = day.c.nt >= reg.c.dpd
    # Too few accepted videos (doses_per_day > 1) and nothing else: missed.
    state = case((taken, TAKEN), (day.c.best == ACCEPTED_RANK, MISSED), else_=day.c.best)
    # Covered days end a run of missed days: taken, excused or pending once ended; today only
    # when taken.
    covered = or_(
        and_(day.c.d <= reg.c.e, or_(taken, day.c.best <= PENDING_DAY)),
        and_(day.c.d == reg.c.today, taken),
    )
    previous = func.max(case((covered, day.c.d))).over(
        partition_by=day.c.pid, order_by=day.c.day, rows=(None, -1)
    )
    window = [flag(covered).label("cov"), func.coalesce(previous, reg.c.start - 1).label("prev")]
    return (
        select(
            day.c.pid,
            day.c.d,
            state.label("st"),
            *(window if gaps else []),
            *(
                reg.c[name]
                for name in (
                    "mask",
                    "e",
                    "today",
                    "today_raw",
                    "through",
                    "iend",
                    "wlast",
                    "nominal",
                )
            ),
        )
        .select_from(day.join(reg, reg.c.pid == day.c.pid))
        .where(day.c.d >= reg.c.start, day.c.d <= reg.c.wlast, is_dose_day(day.c.d, reg.c.mask))
        .subquery("dayx")
    )


def per_patient(reg: Any, narrow: bool) -> Any:
    """The recorded days counted per patient, by state and range."""
    f = day_flags(reg, narrow)
    ended, today = f.c.d <= f.c.e, f.c.d == f.c.today
    taken = f.c.st == TAKEN
    counted = and_(taken, or_(ended, today))

    def count(*conditions: Any) -> Any:
        return func.count().filter(and_(*conditions))

    def largest(value: Any) -> Any:
        return func.max(case((f.c.cov == 1, value)))

    return (
        select(
            f.c.pid,
            count(taken, ended).label("taken_ended"),
            count(taken, today).label("bonus"),
            count(f.c.st == EXCUSED, ended).label("excused"),
            count(f.c.st == PENDING_DAY, ended).label("pending"),
            count(f.c.st == UNCLEAR, ended).label("unclear"),
            count(f.c.st == REJECTED, ended).label("rejected"),
            count(counted, f.c.d <= f.c.iend).label("i_taken"),
            count(f.c.st == EXCUSED, ended, f.c.d <= f.c.iend).label("i_excused"),
            count(taken, or_(f.c.d <= f.c.through, f.c.d == f.c.today_raw)).label("w_taken"),
            count(f.c.st == EXCUSED, f.c.d <= f.c.nominal).label("x_all"),
            func.max(case((counted, f.c.d))).label("last_taken"),
            largest(f.c.d).label("last_cov"),
            largest(f.c.d - f.c.prev - 1).label("gap"),
            func.max(
                case(
                    (
                        and_(f.c.cov == 1, f.c.d - f.c.prev > 1),
                        dose_days(f.c.prev + 1, f.c.d - 1, f.c.mask),
                    )
                )
            ).label("run"),
        )
        .group_by(f.c.pid)
        .subquery("agg")
    )


@functools.lru_cache(maxsize=64)
def figures_statement(
    zones: tuple[str, ...], shape: tuple[str, ...], defs: Definitions = STANDARD
) -> Select[Any]:
    """Per patient in scope, ordered by district, clinic and pseudonym: every figure.

    Built once per time zones, filters and definitions (building it takes longer than running
    it for one patient); bound with :func:`zone_params` and :attr:`Scope.params`.
    """
    reg = regimens(zones, shape, defs)
    a = per_patient(reg, bool(shape))
    return (
        select(*_figure_columns(reg, a, defs))
        .select_from(reg.outerjoin(a, a.c.pid == reg.c.pid))
        .order_by(reg.c.district, reg.c.clinic, reg.c.pseudonym)
    )


def _z(column: Any) -> Any:
    return func.coalesce(column, 0)


def _figure_columns(reg: Any, a: Any, defs: Definitions) -> list[Any]:
    """The columns of :func:`figures_statement`: each figure from the regimen's bounds ``reg``
    and the recorded days counted per patient ``a``."""
    z, start, e, mask = _z, reg.c.start, reg.c.e, reg.c.mask
    ended_days = dose_days(start, e, mask)
    expected = ended_days - z(a.c.excused) + z(a.c.bonus)
    taken = z(a.c.taken_ended) + z(a.c.bonus)
    last_cov = func.coalesce(a.c.last_cov, start - 1)
    gap = case(
        (func.coalesce(a.c.gap, 0) >= e - last_cov, func.coalesce(a.c.gap, 0)), else_=e - last_cov
    )
    trailing = dose_days(last_cov + 1, e, mask)
    run = case((z(a.c.run) >= trailing, z(a.c.run)), else_=trailing)
    planned = dose_days(start, reg.c.nominal, mask) - z(a.c.x_all)
    unsettled = z(a.c.excused) + z(a.c.pending) + z(a.c.unclear) + z(a.c.rejected)
    return [
        *(reg.c[name] for name in ("pid", "pseudonym", "clinic_id", "clinic", "district")),
        *(reg.c[name] for name in ("start_date", "end_reason", "last", "as_of")),
        expected.label("expected"),
        taken.label("taken"),
        z(a.c.excused).label("excused"),
        z(a.c.pending).label("pending"),
        z(a.c.rejected).label("rejected"),
        z(a.c.unclear).label("unclear"),
        (ended_days - z(a.c.taken_ended) - unsettled).label("missed"),
        (
            dose_days(start, least(reg.c.iend, e), mask)
            - z(a.c.i_excused)
            + case((reg.c.today <= reg.c.iend, z(a.c.bonus)), else_=0)
        ).label("i_expected"),
        z(a.c.i_taken).label("i_taken"),
        run.label("run"),
        case((gap >= 0, gap), else_=0).label("gap"),
        a.c.last_taken,
        (least(reg.c.as_of, reg.c.last) - a.c.last_taken).label("since"),
        and_(expected > 0, taken * 100 < defs.below_pct * expected).label("below"),
        (gap >= defs.ltfu_days).label("ltfu"),
        and_(z(a.c.w_taken) > 0, z(a.c.w_taken) >= planned).label("completed"),
    ]


STATE_NAMES = {
    TAKEN: "taken",
    EXCUSED: "excused",
    PENDING_DAY: "pending",
    UNCLEAR: "unclear",
    REJECTED: "rejected",
}


def day_states(
    conn: Connection, patient_id: int, now: datetime, as_of: date | None = None
) -> list[tuple[date, str]]:
    """Each dose day of the patient's latest regimen with its state, as the ledger's SQL sees it.

    States are named as in :data:`vot.adherence.rules.STATES`. The regimen's days come from a
    calendar series in SQL, left-joined to the recorded days, so a test can hold every day
    against :func:`vot.adherence.rules.day_state`.
    """
    scope = Scope(patient_id=patient_id)
    countings = zones(conn, now, as_of, scope)
    reg = regimens(tuple(countings), scope.shape, STANDARD)
    series = select(reg.c.start.label("d")).cte("series", recursive=True)
    series = series.union_all(
        select(series.c.d + 1).where(series.c.d < select(reg.c.last).scalar_subquery())
    )
    f = day_flags(reg, True, gaps=False)
    ended = series.c.d <= select(reg.c.e).scalar_subquery()
    state = case((f.c.st.in_(list(STATE_NAMES)), f.c.st), (ended, MISSED), else_=literal(0))
    query = (
        select(series.c.d, state)
        .select_from(series.join(reg, true()).outerjoin(f, f.c.d == series.c.d))
        .where(is_dose_day(series.c.d, reg.c.mask))
        .order_by(series.c.d)
    )
    params = {**zone_params(countings), **scope.params}
    names = {**STATE_NAMES, MISSED: "missed", 0: "not_due"}
    return [(from_epoch(d), names[code]) for d, code in conn.execute(query, params)]


@dataclass(frozen=True)
class Row:
    """One patient's figures with what an analyst may see of them: no code, no name."""

    pseudonym: str
    clinic: str
    district: str
    end_reason: str | None
    adherence: Adherence


def to_row(row: Any) -> Row:
    """One result row of :func:`figures_statement` as a :class:`Row`."""
    last_taken = from_epoch(row.last_taken) if row.last_taken is not None else None
    return Row(
        row.pseudonym,
        row.clinic,
        row.district,
        row.end_reason,
        Adherence(
            row.pid,
            row.start_date,
            from_epoch(row.last),
            from_epoch(row.as_of),
            row.expected,
            row.taken,
            row.excused,
            row.pending,
            row.rejected,
            row.unclear,
            row.missed,
            row.i_expected,
            row.i_taken,
            row.run,
            row.gap,
            last_taken,
            row.since,
            bool(row.below),
            bool(row.ltfu),
            bool(row.completed),
        ),
    )


def figures(
    conn: Connection,
    now: datetime,
    as_of: date | None = None,
    scope: Scope = EVERYONE,
    defs: Definitions = STANDARD,
    limit: int | None = None,
    offset: int = 0,
) -> list[Row]:
    """Every figure per patient in ``scope`` as of ``as_of`` (None: each patient's today)."""
    countings = zones(conn, now, as_of, scope)
    query = figures_statement(tuple(countings), scope.shape, defs).limit(limit).offset(offset)
    params = {**zone_params(countings), **scope.params}
    with tuned(conn, streaming=scope.patient_id is None):  # one patient: a few hundred rows
        found = conn.execute(query, params).all()
    return [to_row(row) for row in found]


def for_patient(
    conn: Connection,
    patient_id: int,
    now: datetime | None = None,
    as_of: date | None = None,
    defs: Definitions = STANDARD,
) -> Adherence:
    """Figures of the patient's latest regimen as of ``now`` (default: this moment), in SQL.

    Raises:
        LookupError: no such patient, or the patient has no regimen.
    """
    found = figures(conn, now or utcnow(), as_of, Scope(patient_id=patient_id), defs)
    if not found:
        raise LookupError(f"patient {patient_id} has no regimen")
    return found[0].adherence
