"""Reporting periods as DHIS2 writes them: a quarter ``2026Q3`` or a year ``2026``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from vot.reporting import ReportingError

_PERIOD = re.compile(r"(\d{4})(?:Q([1-4]))?")


@dataclass(frozen=True)
class Period:
    """A reporting period: its DHIS2 identifier and its first and last day."""

    id: str
    first: date
    last: date


def parse(text: str) -> Period:
    """The period ``2026Q3`` (July to September 2026) or ``2026`` (the whole year).

    Raises:
        ReportingError: anything else, e.g. ``2026Q5`` or ``Q3-2026``.
    """
    found = _PERIOD.fullmatch(text.strip())
    if found is None or not 1900 <= int(found.group(1)) <= 9999:
        raise ReportingError(f"a period is a quarter like 2026Q3 or a year like 2026, not {text!r}")
    year = int(found.group(1))
    if found.group(2) is None:
        return Period(str(year), date(year, 1, 1), date(year, 12, 31))
    quarter = int(found.group(2))
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period(f"{year}Q{quarter}", first, after - timedelta(days=1))
