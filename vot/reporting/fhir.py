"""Each patient's treatment as an HL7 FHIR R4 Bundle of type ``collection``.

Per patient (their latest course, as in every adherence export):

* a ``Patient`` known only by its pseudonym (an ``identifier``; no name, code, birth date or
  address), marked pseudonymised (``meta.security`` PSEUDED), managed by an ``Organization``
  for their clinic (name and district, once per clinic in a bundle);
* a ``MedicationRequest`` per regimen the course followed, from the day it was followed (a
  regimen change mid-course gives a second one, whose ``priorPrescription`` is the first; all
  share the course's ``groupIdentifier``), the medication as text with the regimen's id as a
  code, and one ``dosageInstruction`` per phase whose ``timing.repeat`` states the schedule:
  daily is 1 per 1 d; weekly is 1 per 1 wk on the phase's first weekday (``dayOfWeek``); given
  weekdays are N per 1 wk on those days; ``boundsPeriod`` is the phase's first and last day;
* a ``MedicationAdministration`` per expected dose day, exactly the days counted as
  ``expected`` by :mod:`vot.adherence.rules` (ended dose days, and today once taken):
  ``completed`` when taken, with ``category`` saying how it was observed (``video``,
  ``in-person`` or ``phone``); ``not-done`` with a ``statusReason`` (``missed``, ``rejected``
  or ``unclear``) when not; ``unknown`` with a note while a video waits for a supervisor
  (pending). Excused days are not expected doses and have none; days still to come neither.

Resource ids are UUIDs derived from the deployment's URL and what they stand for, so the same
patient, regimen or dose has the same id in every export; ``fullUrl`` is ``urn:uuid:ID`` and
references point to it. The bundle is written as it is made (:func:`bundle_chunks`), a page of
patients at a time, so a national export never holds more than one page in memory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.adherence import ledger
from vot.adherence.scope import Scope
from vot.reporting import ReportingError
from vot.treatment import days as ledger_days
from vot.treatment.course import Course, Segment, due_offsets
from vot.treatment.regimens import WEEKDAYS, RegimenDef, Schedule

DAY = timedelta(days=1)
PSEUDONYMISED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}
TAKEN_AS = {
    ledger_days.VIDEO: ("video", "video-observed: a video of the dose was accepted"),
    ledger_days.IN_PERSON: ("in-person", "watched in person by a health worker"),
    ledger_days.PHONE: ("phone", "confirmed by phone after a video could not be used"),
}
NOT_TAKEN = {
    ledger_days.NOTHING: ("missed", "missed: nothing was recorded for the day"),
    ledger_days.REJECTED: ("rejected", "every video of the day was rejected"),
    ledger_days.UNCLEAR: ("unclear", "unclear: the patient was asked to record again"),
}
PENDING_NOTE = "a video of the dose is waiting for a supervisor's decision"
ENDED_EARLY = frozenset(("treatment_failed", "died", "lost_to_follow_up", "not_evaluated"))


@dataclass(frozen=True)
class Names:
    """Where the resources' identifiers and codes live: under the deployment's public URL."""

    base: str  # e.g. https://vot.example.org/fhir

    def system(self, path: str) -> str:
        return f"{self.base}/{path}"

    def id(self, kind: str, key: object) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.base}/{kind}/{key}"))


def _ref(resource_id: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _coded(system: str, code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}], "text": text}


def organization(names: Names, row: ledger.Row) -> dict[str, Any]:
    """The clinic of ``row``: its name and district."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": names.id("Organization", row.clinic_id),
        "identifier": [{"system": names.system("sid/clinic"), "value": row.clinic}],
        "name": row.clinic,
    }
    if row.district:
        resource["address"] = [{"district": row.district}]
    return _entry(resource)


def patient(names: Names, row: ledger.Row) -> dict[str, Any]:
    """The patient under their pseudonym, and nothing else about them."""
    return _entry(
        {
            "resourceType": "Patient",
            "id": names.id("Patient", row.pseudonym),
            "meta": {"security": [PSEUDONYMISED]},
            "identifier": [
                {
                    "use": "secondary",
                    "system": names.system("sid/pseudonym"),
                    "value": row.pseudonym,
                }
            ],
            "managingOrganization": _ref(names.id("Organization", row.clinic_id)),
        }
    )


def medication(names: Names, regimen: RegimenDef) -> dict[str, Any]:
    """The regimen's drugs as text, with the regimen's id (``vot regimen list``) as its code."""
    system = names.system("CodeSystem/regimen")
    return {
        "coding": [{"system": system, "code": regimen.id, "display": regimen.name}],
        "text": regimen.medication or regimen.name,
    }


def repeat(schedule: Schedule, first: date, last: date) -> dict[str, Any]:
    """A phase's ``Timing.repeat``: how often from ``first`` to ``last`` (both included)."""
    found: dict[str, Any] = {
        "boundsPeriod": {"start": first.isoformat(), "end": last.isoformat()},
        "frequency": 1,
        "period": 1,
        "periodUnit": "d",
    }
    if schedule.kind == "weekly":  # on the weekday the phase starts on
        found.update(periodUnit="wk", dayOfWeek=[WEEKDAYS[first.weekday()]])
    elif schedule.kind == "weekdays":
        days = sorted(schedule.weekdays)
        found.update(frequency=len(days), periodUnit="wk", dayOfWeek=[WEEKDAYS[d] for d in days])
    return found


def dosages(segment: Segment, last: date) -> list[dict[str, Any]]:
    """One dosage instruction per phase of the segment's regimen that starts by ``last``."""
    found, offset = [], 0
    for number, phase in enumerate(segment.regimen.phases, start=1):
        first = segment.start + offset * DAY
        offset += phase.days
        if first > last:
            break
        phase_last = min(last, first + (phase.days - 1) * DAY)
        found.append(
            {
                "sequence": number,
                "text": f"{phase.name}: {phase.days} days, {phase.schedule.describe()}",
                "timing": {"repeat": repeat(phase.schedule, first, phase_last)},
            }
        )
    return found


def spans(course: Course) -> list[tuple[Segment, date]]:
    """Each regimen the course followed with its last day (the day before the next one, or
    the course's last day); regimens that start after the course ended are left out."""
    found = []
    for segment, after in zip(course.segments, [*course.segments[1:], None], strict=True):
        last = course.last if after is None else min(course.last, after.start - DAY)
        if segment.start <= last:
            found.append((segment, last))
    return found


def _request_status(got: ledger.Counted, is_last: bool) -> tuple[str, str | None]:
    outcome = got.row.outcome
    if not is_last:
        return "stopped", "the regimen was changed"
    if outcome in ENDED_EARLY:
        return "stopped", f"the course ended with the outcome {outcome}"
    if outcome is not None or got.when.through >= got.course.last:
        return "completed", None
    return "active", None


def medication_requests(names: Names, got: ledger.Counted) -> list[dict[str, Any]]:
    """A MedicationRequest per regimen the course followed, in order."""
    course = got.course
    found: list[dict[str, Any]] = []
    followed = spans(course)
    subject = _ref(names.id("Patient", got.row.pseudonym))
    for number, (segment, last) in enumerate(followed):
        status, reason = _request_status(got, number == len(followed) - 1)
        resource: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": names.id("MedicationRequest", f"{course.id}/{segment.start}"),
            "status": status,
            "intent": "order",
            "groupIdentifier": {
                "system": names.system("sid/course"),
                "value": names.id("course", course.id),
            },
            "medicationCodeableConcept": medication(names, segment.regimen),
            "subject": subject,
            "authoredOn": segment.start.isoformat(),
            "dosageInstruction": dosages(segment, last),
        }
        if reason:
            resource["statusReason"] = {"text": reason}
        if number:
            resource["priorPrescription"] = _ref(found[-1]["resource"]["id"])
        found.append(_entry(resource))
    return found


def dose_days(got: ledger.Counted) -> Iterator[tuple[date, str]]:
    """Each expected dose day of the course with its ledger character, in order: the dose days
    that have ended, and today once a dose is taken on it, less excused days (the days
    :func:`vot.adherence.ledger.from_days` counts as ``expected``)."""
    course, text, when = got.course, got.text, got.when
    start = course.start
    end = (min(when.through, course.last) - start).days
    offsets = list(due_offsets(course, max(end + 1, 0)))
    if when.today is not None:
        today = (when.today - start).days
        if (
            0 <= today <= (course.last - start).days
            and course.scheduled(when.today)
            and today < len(text)
            and text[today] in ledger_days.TAKEN
        ):
            offsets.append(today)
    for offset in offsets:
        char = text[offset] if offset < len(text) else ledger_days.NOTHING
        if char != ledger_days.EXCUSED:
            yield start + offset * DAY, char


def administration(
    names: Names, got: ledger.Counted, day: date, char: str, request: dict[str, Any]
) -> dict[str, Any]:
    """The MedicationAdministration of one expected dose day."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": names.id("MedicationAdministration", f"{got.course.id}/{day}"),
        "status": "unknown",
        "medicationCodeableConcept": request["medicationCodeableConcept"],
        "subject": request["subject"],
        "effectiveDateTime": day.isoformat(),
        "request": _ref(request["id"]),
    }
    if char in TAKEN_AS:
        code, text = TAKEN_AS[char]
        resource["status"] = "completed"
        resource["category"] = _coded(names.system("CodeSystem/dose-observation"), code, text)
    elif char in NOT_TAKEN:
        code, text = NOT_TAKEN[char]
        resource["status"] = "not-done"
        resource["statusReason"] = [_coded(names.system("CodeSystem/dose-not-taken"), code, text)]
    else:  # pending: a video is received and waits for a decision
        resource["note"] = [{"text": PENDING_NOTE}]
    return _entry(resource)


def patient_entries(
    names: Names, got: ledger.Counted, since: date | None
) -> Iterator[dict[str, Any]]:
    """The patient, their MedicationRequests and a MedicationAdministration per expected dose
    day (from ``since`` on, when given)."""
    yield patient(names, got.row)
    requests = medication_requests(names, got)
    yield from requests
    by_start = [(e["resource"]["authoredOn"], e["resource"]) for e in requests]
    for day, char in dose_days(got):
        if since is not None and day < since:
            continue
        request = next(r for start, r in reversed(by_start) if start <= day.isoformat())
        yield administration(names, got, day, char, request)


def entries(
    names: Names, patients: Iterable[ledger.Counted], since: date | None = None
) -> Iterator[dict[str, Any]]:
    """The bundle's entries for these patients: each clinic's Organization before its first
    patient, then each patient's resources. With ``since``, courses that ended before it are
    left out and doses before it too."""
    clinics: set[int] = set()
    for got in patients:
        if since is not None and got.course.last < since:
            continue
        if got.row.clinic_id not in clinics:
            clinics.add(got.row.clinic_id)
            yield organization(names, got.row)
        yield from patient_entries(names, got, since)


def bundle_chunks(
    found: Iterable[dict[str, Any]], now: datetime, next_url: str | None = None
) -> Iterator[str]:
    """The Bundle as JSON text, an entry at a time (``next_url``: the next page, if any)."""
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now.isoformat()},
        "type": "collection",
        "timestamp": now.isoformat(),
    }
    if next_url:
        head["link"] = [{"relation": "next", "url": next_url}]
    yield json.dumps(head)[:-1] + ', "entry": ['
    for number, entry in enumerate(found):
        yield ("\n" if number == 0 else ",\n") + json.dumps(entry, separators=(",", ":"))
    yield "\n]}\n"


def check_clinic(conn: Connection, name: str | None) -> None:
    """Raises ReportingError when ``name`` is given and no clinic has it."""
    c = schema.clinics
    if name is not None and conn.execute(select(c.c.id).where(c.c.name == name)).first() is None:
        raise ReportingError(f"no clinic {name!r}")


def pages(
    conn: Connection, now: datetime, scope: Scope, size: int = 500, offset: int = 0
) -> Iterator[list[ledger.Counted]]:
    """The patients in ``scope`` (export order), ``size`` at a time from ``offset``."""
    while True:
        page = list(ledger.rows(conn, now, None, scope, limit=size, offset=offset))
        if page:
            yield page
        if len(page) < size:
            return
        offset += size
