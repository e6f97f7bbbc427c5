"""Regimens as data: phases, each with a length and a schedule, read from JSON.

The built-in regimens are in ``builtin_regimens.json`` beside this module; a programme adds its
own with ``vot regimen add FILE.json`` (kept in the database, see :mod:`vot.treatment.catalog`).
A definition is checked strictly: an unknown key, a schedule that is not one of the three kinds
or a phase without a length is an error that names the field, never silently ignored.

Schedules:

* ``"daily"``: every day of the phase;
* ``"weekly"``: once a week, on the weekday the phase starts on;
* ``{"weekdays": ["mon", "wed", "fri"]}``: on the given weekdays.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("treatment", "preventive")  # TB disease, or TB preventive treatment (TPT)
DEFAULT_REGIMEN = "6HRZE"
MAX_DAYS = 1000
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}")
BUILTIN_FILE = Path(__file__).with_name("builtin_regimens.json")
# The dose weekdays (bit 0 = Monday) of a course observed on N days a week, unless it says,
# for courses enrolled before regimens were data (regimen_id NULL).
DEFAULT_MASKS = {
    1: 0b0000001,
    2: 0b0001001,
    3: 0b0010101,
    4: 0b0011011,
    5: 0b0011111,
    6: 0b0111111,
    7: 0b1111111,
}


class RegimenError(ValueError):
    """A regimen definition or id that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class Schedule:
    """When a dose is due within a phase: ``daily``, ``weekly`` or on given ``weekdays``."""

    kind: str
    weekdays: frozenset[int] = frozenset()  # 0 = Monday, with kind "weekdays"

    def due(self, day: date, phase_start: date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "weekly":
            return (day - phase_start).days % 7 == 0
        return day.weekday() in self.weekdays

    def describe(self) -> str:
        if self.kind in ("daily", "weekly"):
            return self.kind
        return ", ".join(WEEKDAYS[d].capitalize() for d in sorted(self.weekdays))

    def to_json(self) -> Any:
        if self.kind in ("daily", "weekly"):
            return self.kind
        return {"weekdays": [WEEKDAYS[d] for d in sorted(self.weekdays)]}


@dataclass(frozen=True)
class Phase:
    name: str
    days: int
    schedule: Schedule


@dataclass(frozen=True)
class Completion:
    """When treatment counts as completed: ``doses`` taken within ``within_days`` of the start.

    None for either means the programme's default: every planned dose (less excused days),
    within ``completion_window_pct`` of the regimen's length (see docs/adherence.md).
    """

    doses: int | None = None
    within_days: int | None = None


@dataclass(frozen=True)
class RegimenDef:
    id: str
    name: str
    kind: str
    phases: tuple[Phase, ...]
    completion: Completion = Completion()
    medication: str = ""
    builtin: bool = False

    @property
    def length_days(self) -> int:
        return sum(p.days for p in self.phases)

    def phase_at(self, offset: int) -> tuple[Phase, int]:
        """The phase of day ``offset`` (0 = the regimen's first day) and its first offset.

        Past the last day the last phase goes on (doses made up after the end).
        """
        first = 0
        for phase in self.phases:
            if offset < first + phase.days:
                return phase, first
            first += phase.days
        last = self.phases[-1]
        return last, first - last.days

    def due(self, day: date, start: date) -> bool:
        """Whether a dose is due on ``day`` of this regimen started on ``start``."""
        offset = (day - start).days
        if offset < 0:
            return False
        phase, first = self.phase_at(offset)
        return phase.schedule.due(day, start + timedelta(days=first))

    def describe(self) -> str:
        """The phases in a few words, e.g. ``intensive 56 d daily; continuation 124 d daily``."""
        return "; ".join(f"{p.name} {p.days} d {p.schedule.describe()}" for p in self.phases)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "phases": [
                {"name": p.name, "days": p.days, "schedule": p.schedule.to_json()}
                for p in self.phases
            ],
        }
        if self.medication:
            data["medication"] = self.medication
        if self.completion != Completion():
            data["completion"] = {
                k: v
                for k, v in (
                    ("doses", self.completion.doses),
                    ("within_days", self.completion.within_days),
                )
                if v is not None
            }
        return data


def _fields(data: Any, where: str, required: set[str], optional: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise RegimenError(f"{where} must be a JSON object")
    unknown = sorted(set(data) - required - optional)
    if unknown:
        raise RegimenError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(required - set(data))
    if missing:
        raise RegimenError(f"{where}: missing {', '.join(missing)}")
    return data


def _count(value: Any, where: str, low: int = 1, high: int = MAX_DAYS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RegimenError(f"{where} must be a whole number from {low} to {high}")
    return value


def _text(value: Any, where: str, longest: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise RegimenError(f"{where} must be text of 1 to {longest} characters")
    return value.strip()


def parse_schedule(value: Any, where: str) -> Schedule:
    if value in ("daily", "weekly"):
        return Schedule(value)
    if isinstance(value, Mapping):
        days = _fields(value, where, {"weekdays"}, set())["weekdays"]
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
            raise RegimenError(f"{where}.weekdays must list days among {', '.join(WEEKDAYS)}")
        return Schedule("weekdays", frozenset(WEEKDAYS.index(d) for d in days))
    raise RegimenError(f'{where} must be "daily", "weekly" or {{"weekdays": [...]}}')


def parse_phase(data: Any, where: str) -> Phase:
    fields = _fields(data, where, {"name", "days", "schedule"}, set())
    return Phase(
        _text(fields["name"], f"{where}.name", 40),
        _count(fields["days"], f"{where}.days"),
        parse_schedule(fields["schedule"], f"{where}.schedule"),
    )


def parse(data: Any, builtin: bool = False) -> RegimenDef:
    """A regimen from its JSON form.

    Raises:
        RegimenError: the definition is malformed; the message names the field.
    """
    fields = _fields(
        data, "regimen", {"id", "name", "kind", "phases"}, {"medication", "completion"}
    )
    rid = fields["id"]
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise RegimenError("regimen.id must be 1-32 letters, digits or . _ + -, e.g. 3HP")
    kind = fields["kind"]
    if kind not in KINDS:
        raise RegimenError(f"regimen.kind must be one of {', '.join(KINDS)}")
    phases = fields["phases"]
    if not isinstance(phases, list) or not 1 <= len(phases) <= 6:
        raise RegimenError("regimen.phases must be a list of 1 to 6 phases")
    parsed = tuple(parse_phase(p, f"regimen.phases[{i}]") for i, p in enumerate(phases))
    if sum(p.days for p in parsed) > MAX_DAYS:
        raise RegimenError(f"a regimen lasts at most {MAX_DAYS} days in all")
    completion = Completion()
    if "completion" in fields:
        rule = _fields(fields["completion"], "regimen.completion", set(), {"doses", "within_days"})
        completion = Completion(
            _count(rule["doses"], "regimen.completion.doses") if "doses" in rule else None,
            _count(rule["within_days"], "regimen.completion.within_days", 1, 2 * MAX_DAYS)
            if "within_days" in rule
            else None,
        )
    medication = (
        _text(fields["medication"], "regimen.medication", 300) if "medication" in fields else ""
    )
    return RegimenDef(
        rid, _text(fields["name"], "regimen.name"), kind, parsed, completion, medication, builtin
    )


@functools.cache
def builtins() -> dict[str, RegimenDef]:
    """The regimens shipped with vot, by id."""
    found = [parse(d, builtin=True) for d in json.loads(BUILTIN_FILE.read_text())]
    return {r.id: r for r in found}


def custom(length_days: int, weekdays: Sequence[int] | None = None) -> RegimenDef:
    """A one-phase regimen for a course enrolled before regimens were data (length, weekdays)."""
    days = frozenset(weekdays) if weekdays is not None else frozenset(range(7))
    schedule = Schedule("daily") if days == frozenset(range(7)) else Schedule("weekdays", days)
    rid = f"custom-{length_days}d" + (
        "" if schedule.kind == "daily" else "-" + "".join(WEEKDAYS[d][:2] for d in sorted(days))
    )
    return RegimenDef(
        rid,
        f"{length_days} days, {schedule.describe()}",
        "treatment",
        (Phase("treatment", length_days, schedule),),
    )


def weekday_mask(days_per_week: int, mask: int | None = None) -> int:
    """A legacy course's dose weekdays: its own mask, else the usual days for ``days_per_week``."""
    return mask if mask is not None else DEFAULT_MASKS.get(days_per_week, 0b1111111)
