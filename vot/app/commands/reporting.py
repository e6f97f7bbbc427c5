"""``vot export fhir`` and ``vot export dhis2``: national reporting (see README, "National
reporting"). :mod:`vot.app.commands.data` attaches them to the ``export`` group."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from vot.app.commands.common import Subparsers, a_date, current
from vot.config import Settings


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """Standard output, or ``path`` written whole or not at all (a temporary file beside it,
    renamed when complete), so a failed export leaves no half-written file behind."""
    if path is None:
        yield sys.stdout
        return
    from vot.reporting import ReportingError

    target = Path(path)
    if target.is_dir():
        raise ReportingError(f"cannot write {path}: it is a folder")
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        out = temporary.open("x", encoding="utf-8", newline="")  # mode from the umask
    except OSError as exc:
        raise ReportingError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with out:
            yield out
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _write(path: str | None, chunks: Iterable[str]) -> None:
    with _output(path) as out:
        for chunk in chunks:
            out.write(chunk)


def cmd_export_fhir(settings: Settings, args: argparse.Namespace) -> int:
    from vot.adherence.scope import Scope
    from vot.db import utcnow
    from vot.reporting import fhir

    names = fhir.Names(f"{settings.public_url}/fhir")
    scope = Scope(district=args.district, clinic=args.clinic)
    now = utcnow()
    with current(settings).connect() as conn:
        fhir.check_clinic(conn, args.clinic)
        patients = (got for page in fhir.pages(conn, now, scope) for got in page)
        _write(args.output, fhir.bundle_chunks(fhir.entries(names, patients, args.since), now))
    return 0


def _password(args: argparse.Namespace) -> str:
    from vot.reporting import ReportingError

    if not args.user or not args.password_stdin:
        raise ReportingError("--push needs --user NAME and --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ReportingError("no password on standard input (--password-stdin)")
    return password


def cmd_export_dhis2(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import audit
    from vot.reporting import ReportingError, dhis2, period, push
    from vot.reporting.cohort import cohort

    when = period.parse(args.period)
    codes = dhis2.load_codes(Path(args.codes) if args.codes else None)
    org_units = dhis2.load_org_units(Path(args.org_unit_map)) if args.org_unit_map else None
    if args.push and org_units is None:
        raise ReportingError("--push needs --org-unit-map FILE: DHIS2 knows clinics by org unit")
    password = _password(args) if args.push else ""
    engine = current(settings)
    with engine.connect() as conn:
        found = dhis2.data_value_set(cohort(conn, when), when, codes, org_units)
    text = json.dumps(found.payload, indent=1) + "\n"
    left = ", ".join(f"{rid}: {n}" for rid, n in sorted(found.left_out.items()))
    said = (
        f"{when.id}: {found.courses} course(s) that started in the period, in "
        f"{found.org_units} org unit(s); cohort size = sum of outcomes in each"
        + (f"; left out (no report covers their regimen): {left}" if left else "")
        + ("" if org_units else "; org units are clinic names (no --org-unit-map)")
    )
    summary = push.push(args.push, args.user, password, found.payload) if args.push else None
    if summary is not None:
        with engine.begin() as conn:
            audit(
                conn,
                f"cli:{args.user}",
                "export.dhis2.push",
                "",
                period=when.id,
                url=push.endpoint(args.push),
                values=len(found.payload["dataValues"]),
                status=summary.status,
            )
    if args.output:
        _write(args.output, [text])
        said += f"; written to {args.output}"
    if summary is None and not args.output:
        sys.stdout.write(text)
    print(said, file=sys.stdout if summary or args.output else sys.stderr)
    if summary is not None:
        print(summary.describe())
    return 0


def register(export: Subparsers) -> None:
    """``vot export fhir`` and ``vot export dhis2`` in the ``export`` group."""
    p = export.add_parser(
        "fhir", help="each patient's regimens and doses as an HL7 FHIR R4 Bundle (pseudonyms)"
    )
    p.set_defaults(fn=cmd_export_fhir)
    p.add_argument("--since", type=a_date, help="only doses on or after this date")
    p.add_argument("--clinic", help="clinic name")
    p.add_argument("--district")
    p.add_argument("--output", help="file to write (default: standard output)")
    p = export.add_parser(
        "dhis2", help="the WHO treatment-outcome cohort of a quarter as a DHIS2 data value set"
    )
    p.set_defaults(fn=cmd_export_dhis2)
    p.add_argument("--period", required=True, help="2026Q3: courses that started in it")
    p.add_argument("--org-unit-map", help="CSV clinic,org_unit (or a JSON object)")
    p.add_argument("--codes", help="JSON: data element and category option combo codes")
    p.add_argument("--output", help="file to write (default: standard output)")
    p.add_argument("--push", metavar="URL", help="send it to the DHIS2 at URL")
    p.add_argument("--user", help="the DHIS2 user (with --push)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the DHIS2 password from stdin"
    )
