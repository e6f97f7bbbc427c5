"""Side effects the patient reports on their page: the common TB drug reactions, a severity.

A report is **urgent** when it is severe, or names yellow eyes or skin (``jaundice``: drug
hepatitis) or vision changes (ethambutol): it puts the patient at the top of the follow-up list
at once and is marked on the queue, the item page and the calendar until a supervisor
acknowledges it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from vot import schema
from vot.db import as_utc, audit, inserted_id, utcnow

URGENT_SYMPTOMS = frozenset({"jaundice", "vision_changes"})
MAX_NOTE = 1000
KEY = re.compile(r"[A-Za-z0-9-]{8,64}")
se = schema.side_effects


class SideEffectError(ValueError):
    """A report that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Report:
    id: int
    patient_id: int
    symptoms: tuple[str, ...]
    severity: str
    note: str | None
    urgent: bool
    reported_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None


def is_urgent(symptoms: Iterable[str], severity: str) -> bool:
    return severity == "severe" or bool(URGENT_SYMPTOMS & set(symptoms))


def _checked(symptoms: object, severity: object, note: object) -> tuple[list[str], str, str | None]:
    if not isinstance(symptoms, list) or not symptoms:
        raise SideEffectError("list at least one symptom")
    unknown = [s for s in symptoms if s not in schema.SYMPTOMS]
    if unknown:
        raise SideEffectError(
            f"unknown symptom {unknown[0]!r}; the symptoms are {', '.join(schema.SYMPTOMS)}"
        )
    if severity not in schema.SEVERITIES:
        raise SideEffectError(f"the severity is one of {', '.join(schema.SEVERITIES)}")
    if note is not None and not isinstance(note, str):
        raise SideEffectError("the note is text")
    text = " ".join((note or "").split()) or None
    if text and len(text) > MAX_NOTE:
        raise SideEffectError(f"a note holds at most {MAX_NOTE} characters")
    return sorted(set(symptoms), key=schema.SYMPTOMS.index), str(severity), text


def report(
    conn: Connection,
    patient_id: int,
    symptoms: object,
    severity: object,
    note: object = None,
    submission_id: int | None = None,
    client_key: object = None,
) -> Report:
    """Record a patient's report. A report sent again with the same ``client_key`` (the
    phone's id for it: an answer lost on a bad network) is the report already recorded.

    Raises:
        SideEffectError: no symptom, an unknown one, a bad severity, a note too long, a key
            that is not 8 to 64 letters, digits or dashes.
    """
    listed, level, text = _checked(symptoms, severity, note)
    key = _key(client_key)
    if key is not None:
        known = _known(conn, patient_id, key)
        if known is not None:
            return known
    if submission_id is not None:
        s = schema.submissions
        owner = conn.execute(select(s.c.patient_id).where(s.c.id == submission_id)).scalar()
        if owner != patient_id:
            raise SideEffectError("that video is not one of yours")
    now = utcnow()
    urgent = is_urgent(listed, level)
    row = {
        "patient_id": patient_id,
        "symptoms": listed,
        "severity": level,
        "note": text,
        "submission_id": submission_id,
        "urgent": urgent,
        "reported_at": now,
        "client_key": key,
    }
    try:
        with conn.begin_nested():
            report_id = inserted_id(conn.execute(se.insert().values(**row)))
    except IntegrityError:
        known = _known(conn, patient_id, key) if key is not None else None
        if known is None:
            raise
        return known  # the same report, sent twice at once
    audit(
        conn,
        f"patient:{patient_id}",
        "side_effect.report",
        f"patient:{patient_id}",
        severity=level,
        urgent=urgent,
    )
    return Report(report_id, patient_id, tuple(listed), level, text, urgent, now)


def _key(client_key: object) -> str | None:
    if client_key is None:
        return None
    if not isinstance(client_key, str) or not KEY.fullmatch(client_key):
        raise SideEffectError("the report's key is 8 to 64 letters, digits or dashes")
    return client_key


def _known(conn: Connection, patient_id: int, key: str) -> Report | None:
    row = conn.execute(
        select(se).where(se.c.patient_id == patient_id, se.c.client_key == key)
    ).first()
    return None if row is None else _report(row)


def _report(row: object) -> Report:
    return Report(
        row.id,  # type: ignore[attr-defined]
        row.patient_id,  # type: ignore[attr-defined]
        tuple(row.symptoms or ()),  # type: ignore[attr-defined]
        row.severity,  # type: ignore[attr-defined]
        row.note,  # type: ignore[attr-defined]
        bool(row.urgent),  # type: ignore[attr-defined]
        as_utc(row.reported_at),  # type: ignore[attr-defined,arg-type]
        as_utc(row.acknowledged_at),  # type: ignore[attr-defined]
        row.acknowledged_by,  # type: ignore[attr-defined]
    )


def reports(conn: Connection, patient_id: int, limit: int = 50) -> list[Report]:
    """The patient's reports, newest first."""
    rows = conn.execute(
        select(se).where(se.c.patient_id == patient_id).order_by(se.c.id.desc()).limit(limit)
    )
    return [_report(row) for row in rows]


def open_urgent(
    conn: Connection, patient_ids: Iterable[int] | None = None
) -> dict[int, list[Report]]:
    """Urgent reports not yet acknowledged, per patient (of ``patient_ids``, or everyone)."""
    query = select(se).where(se.c.urgent.is_(True), se.c.acknowledged_at.is_(None))
    if patient_ids is not None:
        ids = sorted(set(patient_ids))
        if not ids:
            return {}
        query = query.where(se.c.patient_id.in_(ids))
    found: dict[int, list[Report]] = {}
    for row in conn.execute(query.order_by(se.c.id)):
        found.setdefault(row.patient_id, []).append(_report(row))
    return found


def acknowledge(conn: Connection, patient_id: int, by: str) -> int:
    """A supervisor has seen the patient's urgent reports (and acts on them); how many."""
    done = conn.execute(
        se.update()
        .where(se.c.patient_id == patient_id, se.c.acknowledged_at.is_(None))
        .values(acknowledged_at=utcnow(), acknowledged_by=by)
    ).rowcount
    if done:
        audit(conn, by, "side_effect.acknowledge", f"patient:{patient_id}", reports=done)
    return int(done)
