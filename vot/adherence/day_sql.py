"""SQL building blocks of the ledger: days as numbers, weekday masks, PostgreSQL settings.

Days are numbered from 1970-01-01 (:class:`epoch_day`) so the date arithmetic reads the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Integer, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

EPOCH = date(1970, 1, 1)


class epoch_day(FunctionElement[int]):  # noqa: N801 (an SQL function)
    """Days since 1970-01-01 of a DATE, or of a UTC timestamp's day."""

    type = Integer()
    inherit_cache = True


@compiles(epoch_day)  # SQLite, and str() of a statement
@compiles(epoch_day, "sqlite")
def _epoch_day_sqlite(element: epoch_day, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@compiles(epoch_day, "postgresql")
def _epoch_day_postgresql(element: epoch_day, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    if isinstance(element.clauses.clauses[0].type, DateTime):  # the day in UTC, not the session's
        value = f"({value} AT TIME ZONE 'UTC')"
    return f"(CAST({value} AS DATE) - DATE '1970-01-01')"


def to_epoch(day: date) -> int:
    return (day - EPOCH).days


def from_epoch(days: int) -> date:
    return EPOCH + timedelta(days=days)


# The planner cannot see through the day arithmetic, guesses a few thousand dose days where there
# are millions, and picks hash aggregates that spill to disk. The rows arrive in index order, so
# streaming (sorted) aggregates are far cheaper; JIT compiling this large query costs more than
# it saves.
PG_SETTINGS = {"jit": "off", "enable_hashagg": "off", "work_mem": "64MB"}


@contextmanager
def tuned(conn: Connection, streaming: bool = True) -> Iterator[None]:
    """PostgreSQL settings for the ledger queries (``streaming``: also no hash aggregates),
    for this transaction only; then restored."""
    if conn.dialect.name != "postgresql":
        yield
        return
    wanted = PG_SETTINGS if streaming else {"jit": "off"}
    before = conn.execute(select(*(func.current_setting(name) for name in wanted))).one()
    conn.execute(select(*(func.set_config(name, value, True) for name, value in wanted.items())))
    try:
        yield
    finally:
        conn.execute(
            select(
                *(
                    func.set_config(name, value, True)
                    for name, value in zip(wanted, before, strict=True)
                )
            )
        )
