"""Dose reminders: send what is due now, and set how to reach a patient."""

from __future__ import annotations

import argparse
import json

from vot.app.commands.common import Subparsers, a_time, group, upgraded
from vot.config import Settings


def cmd_reminders_send(settings: Settings, args: argparse.Namespace) -> int:
    from vot.outreach.dispatch import send_due

    counts = send_due(upgraded(settings), settings, args.now)
    print(json.dumps(counts.as_json()))
    return 0


def checked_contact(args: argparse.Namespace) -> dict[str, str | None]:
    """The contact fields given on the command line, checked ("" clears one).

    Raises:
        vot.outreach.contact.ContactError: a malformed number, time or language.
    """
    from vot.outreach import contact

    given: dict[str, str | None] = {}
    if args.phone is not None:
        given["phone"] = contact.check_phone(args.phone) if args.phone else None
    if args.remind_at is not None:
        given["remind_at"] = contact.check_clock(args.remind_at) if args.remind_at else None
    if args.language is not None:
        if args.language and args.language not in contact.LANGUAGES:
            raise contact.ContactError(f"the language is one of {', '.join(contact.LANGUAGES)}")
        given["language"] = args.language or None
    return given


def describe(found: object) -> str:
    """How a patient is reminded, in a few words (the number itself is not printed)."""
    phone, remind_at = getattr(found, "phone", None), getattr(found, "remind_at", None)
    if not remind_at:
        return "no reminders"
    return f"reminders at {remind_at}" + (" by push and SMS" if phone else " by push")


def cmd_patient_contact(settings: Settings, args: argparse.Namespace) -> int:
    from vot import accounts
    from vot.outreach import contact

    given = checked_contact(args)
    with upgraded(settings).begin() as conn:
        patient = accounts.get_patient(conn, args.code)
        found = contact.update(conn, patient.id, f"cli:{args.by}" if args.by else "cli", **given)
    print(f"patient {patient.code}: {describe(found)}")
    return 0


def add_contact_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phone", help="mobile number for SMS reminders, E.164 (+8613...)")
    parser.add_argument("--remind-at", help="daily reminder time HH:MM in the patient's zone")
    parser.add_argument("--language", help="language of the reminders: en or zh-CN")


def register(sub: Subparsers) -> None:
    reminders = group(sub, "reminders", "dose reminders by Web Push and SMS", "reminders_command")
    p = reminders.add_parser("send", help="send the reminders due now; prints JSON counts")
    p.set_defaults(fn=cmd_reminders_send)
    p.add_argument("--now", type=a_time, help="as if at this ISO time (with its UTC offset)")


def add_patient_contact(patient: Subparsers) -> None:
    p = patient.add_parser("contact", help="set a patient's reminder time, number and language")
    p.set_defaults(fn=cmd_patient_contact)
    p.add_argument("code")
    add_contact_options(p)
    p.add_argument("--by", help="who made the change (recorded in the audit log)")
