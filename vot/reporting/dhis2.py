"""The WHO treatment-outcome cohort as a DHIS2 data value set (``POST /api/dataValueSets``).

For each org unit and each report (a pair of data elements: cohort size, and outcomes
disaggregated by the *TB treatment outcome* category), one value for the cohort size and one
per outcome, zeros included, so that a corrected count replaces an older one. The cohort size
is the sum of the outcomes by construction (DHIS2's validation rule for these data sets), and
:func:`cohort_rule_breaches` checks it again on the finished payload.

The codes default to the WHO TB aggregate package's (``who_tb_codes.json`` beside this module)
and a programme may replace any top-level key of that file with its own (``--codes FILE``).
Which courses a report covers is decided by the regimen a course started on: by its id
(``regimens``) or its kind (``kinds``: ``treatment`` or ``preventive``); the first report that
matches wins, and courses no report matches (preventive treatment, by default) are left out
and counted as such.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vot.adherence.outcomes import OUTCOMES
from vot.reporting import ReportingError
from vot.reporting.cohort import CohortCount
from vot.reporting.period import Period
from vot.treatment.regimens import KINDS, RegimenDef

DEFAULT_CODES_FILE = Path(__file__).with_name("who_tb_codes.json")
ID_SCHEME = re.compile(r"UID|CODE|NAME|ATTRIBUTE:[A-Za-z0-9]{11}")
_KEYS = {"source", "idSchemes", "cohortCategoryOptionCombo", "outcomes", "reports"}


@dataclass(frozen=True)
class Report:
    """A pair of data elements and the courses they count (by starting regimen id or kind)."""

    name: str
    cohort: str  # the data element of the cohort size (cases registered)
    outcomes: str  # the data element disaggregated by treatment outcome
    regimens: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def covers(self, regimen: RegimenDef) -> bool:
        return regimen.id in self.regimens or regimen.kind in self.kinds


@dataclass(frozen=True)
class Codes:
    """What the payload calls things in the receiving DHIS2."""

    reports: tuple[Report, ...]
    outcomes: Mapping[str, str]  # vot outcome -> category option combo
    cohort_combo: str  # the category option combo of the cohort size (the default one)
    id_schemes: Mapping[str, str]  # dataElement, categoryOptionCombo, orgUnit
    source: str = ""

    def report_for(self, regimen: RegimenDef) -> Report | None:
        return next((r for r in self.reports if r.covers(regimen)), None)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 230:
        raise ReportingError(f"{where} must be text of 1 to 230 characters")
    return value.strip()


def _object(value: Any, where: str, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReportingError(f"{where} must be a JSON object")
    wrong = sorted(set(value) - allowed)
    missing = sorted(required - set(value))
    if wrong or missing:
        what = f"unknown key(s) {', '.join(wrong)}" if wrong else f"missing {', '.join(missing)}"
        raise ReportingError(f"{where}: {what}")
    return value


def _names(value: Any, where: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ReportingError(f"{where} must be a list of names")
    if allowed is not None and not set(value) <= set(allowed):
        raise ReportingError(f"{where} may hold only {', '.join(allowed)}")
    return frozenset(value)


def _report(data: Any, where: str) -> Report:
    fields = _object(
        data, where, {"name", "cohort", "outcomes", "regimens", "kinds"}, {"name", "cohort"}
    )
    if "outcomes" not in fields or not ({"regimens", "kinds"} & set(fields)):
        raise ReportingError(f"{where} needs outcomes, and regimens or kinds to cover")
    return Report(
        _text(fields["name"], f"{where}.name"),
        _text(fields["cohort"], f"{where}.cohort"),
        _text(fields["outcomes"], f"{where}.outcomes"),
        _names(fields.get("regimens", []), f"{where}.regimens"),
        _names(fields.get("kinds", []), f"{where}.kinds", KINDS),
    )


def parse_codes(data: Any, base: Mapping[str, Any] | None = None) -> Codes:
    """Codes from their JSON form; keys left out keep their value in ``base`` (the defaults).

    Raises:
        ReportingError: an unknown key, a missing outcome or a malformed value; the message
            names the field.
    """
    given = _object(data, "codes", _KEYS, set())
    merged = {**(base or {}), **given}
    _object(merged, "codes", _KEYS, _KEYS - {"source"})
    kinds = {"dataElement", "categoryOptionCombo", "orgUnit"}
    schemes = _object(merged["idSchemes"], "codes.idSchemes", kinds, kinds)
    for key, scheme in schemes.items():
        if not isinstance(scheme, str) or not ID_SCHEME.fullmatch(scheme):
            raise ReportingError(f"codes.idSchemes.{key} must be UID, CODE, NAME or ATTRIBUTE:uid")
    outcomes = _object(merged["outcomes"], "codes.outcomes", set(OUTCOMES), set(OUTCOMES))
    reports = merged["reports"]
    if not isinstance(reports, list) or not reports:
        raise ReportingError("codes.reports must be a list of one report or more")
    return Codes(
        tuple(_report(item, f"codes.reports[{i}]") for i, item in enumerate(reports)),
        {k: _text(v, f"codes.outcomes.{k}") for k, v in outcomes.items()},
        _text(merged["cohortCategoryOptionCombo"], "codes.cohortCategoryOptionCombo"),
        dict(schemes),
        str(merged.get("source", "")),
    )


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ReportingError(f"cannot read the {what} {path}: {reason}") from None


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(_read(path, what))
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} (line {exc.lineno})"
        raise ReportingError(f"the {what} {path} is not JSON: {where}") from None


def default_codes() -> Codes:
    """The WHO TB aggregate package's codes."""
    return parse_codes(_json(DEFAULT_CODES_FILE, "codes file"))


def load_codes(path: Path | None) -> Codes:
    """The codes of ``path`` over the defaults (the defaults alone when None).

    Raises:
        ReportingError: the file cannot be read or holds malformed codes.
    """
    base = _json(DEFAULT_CODES_FILE, "codes file")
    return parse_codes(_json(path, "codes file") if path else {}, base)


def _org_units_csv(text: str, path: Path) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if header[:2] not in (["clinic", "org_unit"], ["clinic", "orgunit"]):
        raise ReportingError(f"the org-unit map {path} must start with a header clinic,org_unit")
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise ReportingError(f"the org-unit map {path}, line {number}: not clinic,org_unit")
        pairs.append((row[0], row[1], f"line {number}"))
    return _pairs(pairs, path)


def _pairs(pairs: Iterable[tuple[Any, Any, str]], path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for clinic, unit, where in pairs:
        if not isinstance(clinic, str) or not isinstance(unit, str) or not unit.strip():
            raise ReportingError(f"the org-unit map {path}, {where}: a clinic needs an org unit")
        if clinic.strip() in found:
            raise ReportingError(f"the org-unit map {path}, {where}: {clinic!r} is mapped twice")
        found[clinic.strip()] = unit.strip()
    return found


def load_org_units(path: Path) -> dict[str, str]:
    """Clinic name -> DHIS2 org unit, from a CSV file (header ``clinic,org_unit``) or a JSON
    object (``{"North Clinic": "DiszpKrYNg8"}``).

    Raises:
        ReportingError: the file cannot be read, or is malformed (the message says where).
    """
    if path.suffix.lower() == ".json":
        data = _json(path, "org-unit map")
        if not isinstance(data, Mapping):
            raise ReportingError(f"the org-unit map {path} must be a JSON object clinic -> unit")
        return _pairs(((k, v, repr(k)) for k, v in data.items()), path)
    return _org_units_csv(_read(path, "org-unit map"), path)


@dataclass(frozen=True)
class DataValueSet:
    """The payload, and what the cohort held that it does not report."""

    payload: dict[str, Any]
    courses: int  # courses reported
    org_units: int
    left_out: Mapping[str, int] = field(default_factory=dict)  # starting regimen -> courses


def data_value_set(
    counts: Iterable[CohortCount],
    period: Period,
    codes: Codes,
    org_units: Mapping[str, str] | None = None,
) -> DataValueSet:
    """The cohort of ``period`` as a DHIS2 data value set.

    ``org_units`` maps clinic names to org units (``codes.id_schemes["orgUnit"]``); without a
    map, org units are the clinic names (``orgUnitIdScheme`` NAME): a preview, or for a DHIS2
    whose facilities have the clinics' names. Clinics mapped to one org unit are added up.

    Raises:
        ReportingError: a map is given and a clinic of the cohort is not in it.
    """
    table: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    left_out: Counter[str] = Counter()
    unmapped: set[str] = set()
    for count in counts:
        report = codes.report_for(count.regimen)
        if report is None:
            left_out[count.regimen.id] += count.courses
            continue
        if org_units is not None and count.clinic not in org_units:
            unmapped.add(count.clinic)
            continue
        unit = org_units[count.clinic] if org_units is not None else count.clinic
        table[(unit, codes.reports.index(report))][count.outcome] += count.courses
    if unmapped:
        names = ", ".join(repr(n) for n in sorted(unmapped))
        raise ReportingError(f"no org unit for clinic(s) {names} in the org-unit map")
    values = []
    for (unit, index), outcomes in sorted(table.items()):
        report = codes.reports[index]
        values.append(_value(report.cohort, codes.cohort_combo, unit, period, outcomes.total()))
        values.extend(
            _value(report.outcomes, codes.outcomes[o], unit, period, outcomes[o]) for o in OUTCOMES
        )
    schemes = {**codes.id_schemes, **({} if org_units is not None else {"orgUnit": "NAME"})}
    payload = {
        "period": period.id,
        "dataElementIdScheme": schemes["dataElement"],
        "categoryOptionComboIdScheme": schemes["categoryOptionCombo"],
        "orgUnitIdScheme": schemes["orgUnit"],
        "dataValues": values,
    }
    breaches = cohort_rule_breaches(payload, codes)
    if breaches:  # by construction there are none; a breach here is a bug, never sent
        raise AssertionError("; ".join(breaches))
    reported = sum(o.total() for o in table.values())
    return DataValueSet(payload, reported, len({u for u, _ in table}), dict(left_out))


def _value(element: str, combo: str, unit: str, period: Period, value: int) -> dict[str, str]:
    return {
        "dataElement": element,
        "categoryOptionCombo": combo,
        "orgUnit": unit,
        "period": period.id,
        "value": str(value),
    }


def cohort_rule_breaches(payload: Mapping[str, Any], codes: Codes) -> list[str]:
    """Where the cohort size differs from the sum of the outcomes (empty: the rule holds)."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    outcome_combos = set(codes.outcomes.values())
    for value in payload["dataValues"]:
        for report in codes.reports:
            key = (value["orgUnit"], report.name)
            if (value["dataElement"], value["categoryOptionCombo"]) == (
                report.cohort,
                codes.cohort_combo,
            ):
                sums[key][0] += int(value["value"])
            elif value["dataElement"] == report.outcomes and value["categoryOptionCombo"] in (
                outcome_combos
            ):
                sums[key][1] += int(value["value"])
    return [
        f"{unit}, {name}: cohort {size} but outcomes add up to {total}"
        for (unit, name), (size, total) in sorted(sums.items())
        if size != total
    ]
