"""How to reach a patient: phone number (E.164, for SMS reminders), reminder time, language.

Set by the supervisor (``vot patient add --phone --remind-at``, the patient's page in the review
UI) or by the patient on their page. The phone number is never shown to analysts and is
deleted by an erasure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, select

from vot import schema
from vot.db import audit

LANGUAGES = ("en", "zh-CN")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
p = schema.patients


class ContactError(ValueError):
    """A phone number, time or language that cannot be used; the message says why."""


@dataclass(frozen=True)
class Contact:
    phone: str | None
    remind_at: str | None
    language: str | None


def check_phone(phone: str) -> str:
    """A phone number in E.164 form (``+8613812345678``), spaces and dashes dropped.

    Raises:
        ContactError: not such a number.
    """
    cleaned = re.sub(r"[\s().-]", "", phone)
    if not _PHONE.fullmatch(cleaned):
        raise ContactError(
            "a phone number starts with + and the country code, then 7 to 15 digits in all, "
            "e.g. +8613812345678"
        )
    return cleaned


def check_clock(value: str) -> str:
    """A time of day, ``HH:MM`` (24-hour).

    Raises:
        ContactError: not such a time.
    """
    if not _CLOCK.fullmatch(value.strip()):
        raise ContactError("a reminder time is HH:MM on the 24-hour clock, e.g. 08:30")
    return value.strip()


def get(conn: Connection, patient_id: int) -> Contact:
    row = conn.execute(
        select(p.c.phone, p.c.remind_at, p.c.language).where(p.c.id == patient_id)
    ).one()
    return Contact(row.phone, row.remind_at, row.language)


_UNSET = object()


def update(
    conn: Connection,
    patient_id: int,
    actor: str,
    phone: object = _UNSET,
    remind_at: object = _UNSET,
    language: object = _UNSET,
) -> Contact:
    """Set what is given (None or "" clears it); returns the contact as it is now.

    Raises:
        ContactError: a malformed phone number, time or language (nothing is changed).
    """
    values: dict[str, str | None] = {}
    if phone is not _UNSET:
        values["phone"] = check_phone(str(phone)) if phone else None
    if remind_at is not _UNSET:
        values["remind_at"] = check_clock(str(remind_at)) if remind_at else None
    if language is not _UNSET:
        if language and language not in LANGUAGES:
            raise ContactError(f"the language is one of {', '.join(LANGUAGES)}")
        values["language"] = str(language) if language else None
    if values:
        conn.execute(p.update().where(p.c.id == patient_id).values(**values))
        # The number itself stays out of the audit log: who changed what, not what it is.
        audit(conn, actor, "patient.contact", f"patient:{patient_id}", changed=sorted(values))
    return get(conn, patient_id)
