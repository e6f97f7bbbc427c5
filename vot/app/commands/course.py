"""Commands about treatment courses: the regimens, and a patient's regimen changes, doses
recorded by hand and outcome."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from vot.app.commands.common import Subparsers, a_date, group, upgraded
from vot.config import Settings


def cmd_regimen_list(settings: Settings, args: argparse.Namespace) -> int:
    from vot.treatment import catalog

    with upgraded(settings).connect() as conn:
        regimens = catalog.catalog(conn)
    if args.json:
        print(
            json.dumps([r.to_json() | {"builtin": r.builtin} for r in regimens.values()], indent=2)
        )
        return 0
    width = max(len(rid) for rid in regimens)
    for regimen in regimens.values():
        source = "built-in" if regimen.builtin else "added"
        columns = (regimen.id.ljust(width), f"{regimen.length_days:>4} d", regimen.kind.ljust(10))
        print("  ".join((*columns, source.ljust(8), regimen.name)))
        print(f"{'':<{width}}  {regimen.describe()}")
    return 0


def cmd_regimen_add(settings: Settings, args: argparse.Namespace) -> int:
    from vot.treatment import catalog
    from vot.treatment.regimens import RegimenError

    path = Path(args.file)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise LookupError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RegimenError(f"{path} is not JSON: {exc.msg} (line {exc.lineno})") from None
    with upgraded(settings).begin() as conn:
        regimen = catalog.add(conn, data, actor=f"cli:{args.by}" if args.by else "cli")
    print(f"regimen {regimen.id} added: {regimen.name} ({regimen.describe()})")
    return 0


def _patient_id(conn: object, code: str) -> int:
    from vot.accounts import get_patient

    return get_patient(conn, code).id  # type: ignore[arg-type]


def cmd_patient_regimen(settings: Settings, args: argparse.Namespace) -> int:
    from vot.treatment import courses

    by = f"cli:{args.by}" if args.by else "cli"
    with upgraded(settings).begin() as conn:
        course = courses.change_regimen(
            conn,
            _patient_id(conn, args.code),
            args.regimen,
            args.start,
            by,
            args.reason,
            date.today(),
        )
    print(
        f"patient {args.code}: {args.regimen} from {args.start}; the course now ends on "
        f"{course.nominal_last}"
    )
    return 0


def cmd_patient_dose(settings: Settings, args: argparse.Namespace) -> int:
    from vot.treatment import doses

    by = f"cli:{args.by}" if args.by else "cli"
    with upgraded(settings).begin() as conn:
        got = doses.record_dose(
            conn, _patient_id(conn, args.code), args.date, args.kind, by, args.note
        )
    words = "watched in person" if got.kind == "in_person" else "confirmed by phone"
    print(f"patient {args.code}: the dose of {got.day} {words} is recorded (taken)")
    return 0


def cmd_patient_outcome(settings: Settings, args: argparse.Namespace) -> int:
    from vot.adherence import outcomes

    by = f"cli:{args.by}" if args.by else "cli"
    with upgraded(settings).begin() as conn:
        got = outcomes.record(
            conn, _patient_id(conn, args.code), args.outcome, by, args.date, args.replace
        )
    print(f"patient {args.code}: outcome {got.outcome} on {got.on}; the course is closed")
    return 0


def add_patient_actions(patient: Subparsers) -> None:
    """``vot patient regimen|dose|outcome``, beside the other patient actions."""
    from vot.adherence.outcomes import OUTCOMES
    from vot.schema import DOSE_KINDS

    p = patient.add_parser("regimen", help="change the patient's regimen from a given date")
    p.set_defaults(fn=cmd_patient_regimen)
    p.add_argument("code")
    p.add_argument("regimen", help="a regimen id (vot regimen list)")
    p.add_argument(
        "--from", dest="start", type=a_date, required=True, help="first day (YYYY-MM-DD)"
    )
    p.add_argument("--reason", help="why (kept with the change)")
    p.add_argument("--by", help="who decided it (recorded in the audit log)")
    p = patient.add_parser("dose", help="record a dose watched in person or confirmed by phone")
    p.set_defaults(fn=cmd_patient_dose)
    p.add_argument("code")
    p.add_argument("--date", type=a_date, required=True, help="the dose day (YYYY-MM-DD)")
    p.add_argument("--kind", choices=DOSE_KINDS, required=True)
    p.add_argument("--by", help="who watched or called (recorded in the audit log)")
    p.add_argument("--note")
    p = patient.add_parser("outcome", help="record the WHO treatment outcome; the course ends")
    p.set_defaults(fn=cmd_patient_outcome)
    p.add_argument("code")
    p.add_argument("outcome", choices=OUTCOMES)
    p.add_argument("--date", type=a_date, help="the day of the outcome (default today)")
    p.add_argument("--by", help="who recorded it (recorded in the audit log)")
    p.add_argument("--replace", action="store_true", help="correct an outcome recorded before")


def register(sub: Subparsers) -> None:
    regimen = group(sub, "regimen", "the regimens patients can follow", "regimen_command")
    p = regimen.add_parser("list", help="every regimen: built-in and added")
    p.set_defaults(fn=cmd_regimen_list)
    p.add_argument("--json", action="store_true")
    p = regimen.add_parser("add", help="add a programme's own regimen from a JSON file")
    p.set_defaults(fn=cmd_regimen_add)
    p.add_argument("file")
    p.add_argument("--by", help="who added it (recorded in the audit log)")


__all__ = ["add_patient_actions", "register"]
