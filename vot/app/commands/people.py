"""Commands about people: enrol patients, their upload links and erasure; staff accounts."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from vot.app.commands import course, reminders
from vot.app.commands.common import Subparsers, a_date, group, upgraded
from vot.config import Settings


def cmd_patient_add(settings: Settings, args: argparse.Namespace) -> int:
    from vot import accounts
    from vot.outreach import contact
    from vot.treatment import courses

    given = reminders.checked_contact(args)  # before anything is written
    with upgraded(settings).begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, args.clinic, args.district or "")
        patient, created = accounts.add_patient(
            conn, args.code, clinic_id, args.start or date.today(), args.tz, regimen_id=args.regimen
        )
        course = courses.latest(conn, patient.id)
        found = contact.update(conn, patient.id, "cli", **given)
    verb = "enrolled" if created else "already enrolled"
    print(
        f"patient {patient.code} {verb} on {course.regimen.id} from {course.start} to "
        f"{course.nominal_last} (clinic {args.clinic}, time zone {patient.timezone}; "
        f"{reminders.describe(found)})"
    )
    return 0


def cmd_patient_link(settings: Settings, args: argparse.Namespace) -> int:
    from vot import tokens

    with upgraded(settings).begin() as conn:
        if args.patient_command == "revoke-link":
            count = tokens.revoke(conn, args.code)
            print(f"patient {args.code}: {count} link(s) revoked")
            return 0
        if args.patient_command == "rotate-link":
            token = tokens.rotate(conn, settings.secret_key, args.code)
        else:
            token = tokens.link_token(conn, settings.secret_key, args.code)
    print(tokens.patient_url(settings.public_url, token))
    return 0


def cmd_patient_erase(settings: Settings, args: argparse.Namespace) -> int:
    from vot.retention.erasure import erase_patient
    from vot.storage import open_storage

    engine = upgraded(settings)
    actor = f"cli:{args.by}" if args.by else "cli"
    report = erase_patient(
        engine, open_storage(settings), settings, args.code, actor=actor, reason=args.reason
    )
    print(report.summary())
    return 0


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from vot import accounts

    engine = upgraded(settings)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    with engine.begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, args.clinic) if args.clinic else None
        _uid, created = accounts.ensure_user(conn, args.username, password, args.role, clinic_id)
    print(f"user {args.username} {'created' if created else 'updated'} ({args.role})")
    return 0


def register(sub: Subparsers) -> None:
    patient = group(sub, "patient", "enrol patients, links, erasure", "patient_command")
    p = patient.add_parser("add", help="enrol a patient on a regimen")
    p.set_defaults(fn=cmd_patient_add)
    p.add_argument("code")
    p.add_argument("--clinic", required=True)
    p.add_argument("--district")
    p.add_argument("--start", type=a_date, help="regimen start (default today)")
    p.add_argument("--tz", default="UTC", help="IANA time zone, e.g. Asia/Shanghai")
    p.add_argument("--regimen", help="regimen id (default 6HRZE; see vot regimen list)")
    reminders.add_contact_options(p)
    for action, help_ in (
        ("link", "print the patient's personal upload link"),
        ("rotate-link", "revoke the patient's link and print a new one"),
        ("revoke-link", "stop the patient's link from working"),
    ):
        p = patient.add_parser(action, help=help_)
        p.set_defaults(fn=cmd_patient_link)
        p.add_argument("code")
    course.add_patient_actions(patient)
    reminders.add_patient_contact(patient)
    p = patient.add_parser(
        "erase", help="erase every stored video of a patient at their request (decisions stay)"
    )
    p.set_defaults(fn=cmd_patient_erase)
    p.add_argument("code")
    p.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    p.add_argument("--by", help="who is carrying it out (recorded in the audit log)")

    user = group(sub, "user", "staff accounts", "user_command")
    p = user.add_parser("add", help="create a staff account or reset its password")
    p.set_defaults(fn=cmd_user_add)
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=("supervisor", "analyst", "admin"))
    p.add_argument("--clinic", help="clinic name (supervisors)")
    p.add_argument("--password-stdin", action="store_true")
