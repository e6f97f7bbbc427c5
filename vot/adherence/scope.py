"""Which patients a ledger query covers (filters an analyst may combine) and the counted days
in each of their time zones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from vot.adherence.rules import Counting, counting


@dataclass(frozen=True)
class Scope:
    """Which patients: filters an analyst may combine (None: no filter)."""

    district: str | None = None
    clinic: str | None = None
    start_from: date | None = None
    start_to: date | None = None
    patient_id: int | None = None
    clinic_id: int | None = None

    @property
    def shape(self) -> tuple[str, ...]:
        """The filters in use: queries are built once per shape, then bound to the values."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    @property
    def params(self) -> dict[str, Any]:
        return {f"scope_{name}": getattr(self, name) for name in self.shape}


EVERYONE = Scope()


def countings_of(rows: Sequence[Any], now: datetime, as_of: date | None) -> dict[str, Counting]:
    """The counted days in each time zone of ``rows`` (anything with a ``timezone``)."""
    return {tz: counting(tz, now, as_of) for tz in sorted({row.timezone for row in rows})}
