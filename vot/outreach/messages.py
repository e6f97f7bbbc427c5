"""Messages between a patient and their clinic: one thread per patient, plain text only.

A message is text of at most :data:`MAX_LENGTH` characters. Anything that looks like markup is
refused rather than stored (pages show messages as text, so it could not do harm there, but an
e-mail or SMS copy elsewhere might render it). A rejected or unclear verdict adds a kind message
(``kind`` ``record_again``) with the reason and the day, which the patient's page shows with a
"record again" button in the patient's language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, func, select

from vot import schema
from vot.db import as_utc, inserted_id, utcnow

MAX_LENGTH = 1000
SENDERS = ("patient", "staff")
_MARKUP = re.compile(r"<\s*[A-Za-z!/?]|&[A-Za-z]+;|&#")
m = schema.messages


class MessageError(ValueError):
    """A message that cannot be sent; the message says why."""


@dataclass(frozen=True)
class Message:
    id: int
    sender: str
    by: str | None  # the staff member's name (never shown to the patient)
    body: str
    kind: str
    dose_date: date | None
    created_at: datetime
    read_at: datetime | None


def checked(body: object) -> str:
    """The text of a message, or why it cannot be sent.

    Raises:
        MessageError: not text, empty, too long, markup, or control characters.
    """
    if not isinstance(body, str):
        raise MessageError("a message is text")
    text = unicodedata.normalize("NFC", body).strip()
    if not text:
        raise MessageError("the message is empty")
    if len(text) > MAX_LENGTH:
        raise MessageError(f"a message holds at most {MAX_LENGTH} characters")
    if _MARKUP.search(text):
        raise MessageError("messages are plain text: write without < > or & codes")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise MessageError("the message contains control characters")
    return text


def send(
    conn: Connection,
    patient_id: int,
    sender: str,
    body: object,
    user_id: int | None = None,
    kind: str = "text",
    dose_date: date | None = None,
) -> int:
    """Add a message to the patient's thread; its id.

    Raises:
        MessageError: as :func:`checked`.
    """
    if sender not in SENDERS:
        raise MessageError(f"a sender is one of {', '.join(SENDERS)}")
    return inserted_id(
        conn.execute(
            m.insert().values(
                patient_id=patient_id,
                sender=sender,
                user_id=user_id,
                body=checked(body),
                kind=kind,
                dose_date=dose_date,
                created_at=utcnow(),
            )
        )
    )


def record_again(conn: Connection, patient_id: int, day: date, reason: str, user_id: int) -> int:
    """The kind message after a rejected or unclear video: the reason, and the day to record."""
    return send(conn, patient_id, "staff", reason, user_id, "record_again", day)


def thread(conn: Connection, patient_id: int, limit: int = 100) -> list[Message]:
    """The latest messages of the patient's thread, oldest first."""
    u = schema.users
    rows = conn.execute(
        select(m, u.c.username)
        .select_from(m.outerjoin(u, u.c.id == m.c.user_id))
        .where(m.c.patient_id == patient_id)
        .order_by(m.c.id.desc())
        .limit(limit)
    ).all()
    return [
        Message(
            row.id,
            row.sender,
            row.username,
            row.body,
            row.kind,
            row.dose_date,
            as_utc(row.created_at) or row.created_at,
            as_utc(row.read_at),
        )
        for row in reversed(rows)
    ]


def mark_read(conn: Connection, patient_id: int, reader: str) -> int:
    """Mark as read what the other side sent (``reader`` is ``patient`` or ``staff``)."""
    other = "staff" if reader == "patient" else "patient"
    return int(
        conn.execute(
            m.update()
            .where(m.c.patient_id == patient_id, m.c.sender == other, m.c.read_at.is_(None))
            .values(read_at=utcnow())
        ).rowcount
    )


def unread(conn: Connection, patient_ids: Iterable[int], reader: str) -> dict[int, int]:
    """How many messages the other side sent that ``reader`` has not read, per patient."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    other = "staff" if reader == "patient" else "patient"
    query = (
        select(m.c.patient_id, func.count())
        .where(m.c.sender == other, m.c.read_at.is_(None), m.c.patient_id.in_(ids))
        .group_by(m.c.patient_id)
    )
    return {pid: int(n) for pid, n in conn.execute(query)}
