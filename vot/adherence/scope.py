"""Which patients a ledger query covers (filters an analyst may combine) and the counted days
in each of their time zones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.adherence.day_sql import to_epoch
from vot.adherence.rules import Counting, counting

p = schema.patients


@dataclass(frozen=True)
class Scope:
    """Which patients: filters an analyst may combine (None: no filter)."""

    district: str | None = None
    clinic: str | None = None
    start_from: date | None = None
    start_to: date | None = None
    patient_id: int | None = None

    @property
    def shape(self) -> tuple[str, ...]:
        """The filters in use: queries are built once per shape, then bound to the values."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    @property
    def params(self) -> dict[str, Any]:
        return {f"scope_{name}": getattr(self, name) for name in self.shape}


EVERYONE = Scope()


def zones(
    conn: Connection, now: datetime, as_of: date | None, scope: Scope | None = None
) -> dict[str, Counting]:
    """The counted days in every time zone patients (of one patient in ``scope``) live in."""
    query = select(p.c.timezone).distinct()
    if scope is not None and scope.patient_id is not None:
        query = query.where(p.c.id == scope.patient_id)
    found = conn.execute(query).scalars().all()
    return {tz: counting(tz, now, as_of) for tz in sorted(found)}


def zone_params(countings: Mapping[str, Counting]) -> dict[str, Any]:
    """The bound values of :func:`regimens` for these time zones."""
    params: dict[str, Any] = {}
    for i, cnt in enumerate(countings.values()):
        params[f"through_{i}"] = to_epoch(cnt.through)
        params[f"today_{i}"] = to_epoch(cnt.today) if cnt.today else None
    return params
