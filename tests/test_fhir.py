"""The FHIR R4 export (vot.reporting.fhir), on SQLite and PostgreSQL: every resource validates
with two maintained FHIR model libraries (the SMART ``fhirclient`` models, generated from FHIR
4.0.1 = R4, and ``fhir.resources``' R4B models, FHIR 4.3.0, which add the ``extra="forbid"``
and format checks), the required code bindings hold, the figures are the ledger's, and nothing
identifies a patient; then ``vot export fhir`` and ``GET /api/v1/fhir/Bundle``."""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle as R4BBundle
from fhirclient.models.bundle import Bundle as R4Bundle
from hypothesis import given
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from sqlalchemy import Connection, select

from tests.conftest import run_cli
from tests.test_analyst_ui import OPENAPI, PASSWORD, sign_in
from tests.test_ledger import add_video
from vot import accounts, schema
from vot.adherence import ledger
from vot.adherence.rules import Counting
from vot.adherence.scope import EVERYONE, Scope
from vot.reporting import fhir
from vot.treatment import courses, doses
from vot.treatment.course import Course, Segment
from vot.treatment.regimens import builtins

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
NAMES = fhir.Names("http://vot.test/fhir")
# The required bindings (hl7.org/fhir/R4) of the coded elements the export writes.
REQUIRED = {
    ("Bundle", "type"): {"document", "message", "transaction", "transaction-response", "batch"}
    | {"batch-response", "history", "searchset", "collection"},
    ("MedicationRequest", "status"): {"active", "on-hold", "cancelled", "completed"}
    | {"entered-in-error", "stopped", "draft", "unknown"},
    ("MedicationRequest", "intent"): {"proposal", "plan", "order", "original-order"}
    | {"reflex-order", "filler-order", "instance-order", "option"},
    ("MedicationAdministration", "status"): {"in-progress", "not-done", "on-hold", "completed"}
    | {"entered-in-error", "stopped", "unknown"},
}
UNITS_OF_TIME = {"s", "min", "h", "d", "wk", "mo", "a"}
DAYS_OF_WEEK = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _check_coded(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    for (owner, field), allowed in REQUIRED.items():
        if owner == kind and field in resource:
            assert resource[field] in allowed, (kind, field, resource[field])
    for dosage in resource.get("dosageInstruction", []):
        repeat = dosage["timing"]["repeat"]
        assert repeat["periodUnit"] in UNITS_OF_TIME
        assert set(repeat.get("dayOfWeek", [])) <= DAYS_OF_WEEK


def validate(bundle: dict[str, Any]) -> Counter[str]:
    """Validate the bundle and every resource in it; how many of each type it holds."""
    R4BBundle.model_validate(bundle)
    R4Bundle(bundle, strict=True)
    assert bundle["resourceType"] == "Bundle" and "total" not in bundle  # bdl-1
    assert REQUIRED[("Bundle", "type")] >= {bundle["type"]} == {"collection"}
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(urls) == len(set(urls))  # bdl-7
    kinds: Counter[str] = Counter()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        kinds[kind] += 1
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        get_fhir_model_class(kind).model_validate(resource)
        getattr(importlib.import_module(f"fhirclient.models.{kind.lower()}"), kind)(
            resource, strict=True
        )
        _check_coded(resource)
        assert set(_references(resource)) <= set(urls), "a reference resolves in the bundle"
    return kinds


def export(conn: Connection, since: date | None = None, scope: Scope = EVERYONE) -> dict[str, Any]:
    patients = (got for page in fhir.pages(conn, NOW, scope, size=2) for got in page)
    text = "".join(fhir.bundle_chunks(fhir.entries(NAMES, patients, since), NOW))
    return json.loads(text)  # type: ignore[no-any-return]


def of(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.fixture
def clinic(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return accounts.ensure_clinic(conn, "North Clinic", "Lakeside")


def enrol(conn: Connection, clinic: int, code: str, start: date, regimen: str) -> int:
    return accounts.add_patient(conn, code, clinic, start, "UTC", regimen_id=regimen)[0].id


def test_a_3hp_patient_has_12_administrations_once_the_course_is_over(engine, clinic) -> None:  # type: ignore[no-untyped-def]
    start = date(2026, 6, 3)  # a Wednesday
    with engine.begin() as conn:
        pid = enrol(conn, clinic, "ALICE-WANG-17", start, "3HP")
        for week in range(10):
            add_video(conn, pid, start + timedelta(weeks=week), schema.ACCEPTED)
        doses.record_dose(conn, pid, start + timedelta(weeks=10), "in_person", "sup", now=NOW)
        figures = ledger.for_patient(conn, pid, NOW)
        bundle = export(conn)
    assert validate(bundle) == {
        "Organization": 1,
        "Patient": 1,
        "MedicationRequest": 1,
        "MedicationAdministration": 12,
    }
    given = of(bundle, "MedicationAdministration")
    done = [r for r in given if r["status"] == "completed"]
    assert len(done) == figures.taken == 11
    assert Counter(r["category"]["coding"][0]["code"] for r in done) == {
        "video": 10,
        "in-person": 1,
    }
    (missed,) = [r for r in given if r["status"] == "not-done"]
    assert missed["effectiveDateTime"] == (start + timedelta(weeks=11)).isoformat()
    assert missed["statusReason"][0]["coding"][0]["code"] == "missed"
    assert {date.fromisoformat(r["effectiveDateTime"]).weekday() for r in given} == {2}
    (request,) = of(bundle, "MedicationRequest")
    assert request["status"] == "completed" and request["medicationCodeableConcept"]["text"] == (
        "isoniazid, rifapentine"
    )
    (dosage,) = request["dosageInstruction"]
    assert dosage["timing"]["repeat"] == {
        "boundsPeriod": {"start": "2026-06-03", "end": "2026-08-25"},
        "frequency": 1,
        "period": 1,
        "periodUnit": "wk",
        "dayOfWeek": ["wed"],
    }
    # Nothing identifies the patient: the pseudonym only, no name, no code, no birth date.
    (person,) = of(bundle, "Patient")
    assert set(person) == {"resourceType", "id", "meta", "identifier", "managingOrganization"}
    assert person["identifier"][0]["value"].startswith("P-")
    assert "ALICE" not in json.dumps(bundle) and "WANG" not in json.dumps(bundle)


def test_every_state_of_a_day_and_the_ledger_agree(engine, clinic) -> None:  # type: ignore[no-untyped-def]
    start = NOW.date() - timedelta(days=20)
    states = [schema.ACCEPTED, schema.REJECTED, schema.UNCLEAR, schema.REVIEW, schema.AUTO_ACCEPTED]
    with engine.begin() as conn:
        pid = enrol(conn, clinic, "P-1", start, "6HRZE")
        for day, status in enumerate(states):
            add_video(conn, pid, start + timedelta(days=day), status)
        doses.record_dose(conn, pid, start + timedelta(days=6), "phone", "sup", now=NOW)
        user = accounts.ensure_user(conn, "sup", "password-123", "supervisor", clinic)[0]
        doses.excuse(conn, pid, start + timedelta(days=7), "in_hospital", user, "sup", now=NOW)
        add_video(conn, pid, NOW.date(), schema.ACCEPTED)  # today, taken: expected already
        figures = ledger.for_patient(conn, pid, NOW)
        bundle = export(conn)
    validate(bundle)
    given = of(bundle, "MedicationAdministration")
    status = Counter(r["status"] for r in given)
    assert len(given) == figures.expected == 20  # 20 ended days + today, less one excused
    assert status["completed"] == figures.taken == 4
    assert status["unknown"] == figures.pending == 1
    assert status["not-done"] == figures.missed + figures.rejected + figures.unclear == 15
    reasons = Counter(
        r["statusReason"][0]["coding"][0]["code"] for r in given if "statusReason" in r
    )
    assert reasons == {"rejected": 1, "unclear": 1, "missed": 13}
    days = {r["effectiveDateTime"] for r in given}
    assert (start + timedelta(days=7)).isoformat() not in days  # excused: not expected
    assert NOW.date().isoformat() in days
    assert {r["status"] for r in of(bundle, "MedicationRequest")} == {"active"}


def test_a_regimen_change_gives_a_second_request_from_its_date(engine, clinic) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        pid = enrol(conn, clinic, "P-1", date(2026, 1, 5), "4R")
        courses.change_regimen(conn, pid, "3HP", date(2026, 1, 15), "sup", "rash", NOW.date())
        enrol(conn, clinic, "P-2", date(2026, 3, 2), "6HRZE-TIW")
        bundle = export(conn)
    validate(bundle)
    by_start = {r["authoredOn"]: r for r in of(bundle, "MedicationRequest")}  # any patient order
    first, second, tiw = (by_start[day] for day in ("2026-01-05", "2026-01-15", "2026-03-02"))
    assert (first["status"], first["statusReason"]["text"]) == (
        "stopped",
        "the regimen was changed",
    )
    assert first["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] == {
        "start": "2026-01-05",
        "end": "2026-01-14",
    }
    assert second["authoredOn"] == "2026-01-15"
    assert second["priorPrescription"]["reference"] == f"urn:uuid:{first['id']}"
    assert second["groupIdentifier"] == first["groupIdentifier"]
    repeat = second["dosageInstruction"][0]["timing"]["repeat"]
    assert (repeat["periodUnit"], repeat["dayOfWeek"]) == ("wk", ["thu"])
    given = of(bundle, "MedicationAdministration")
    by_request = Counter(
        r["request"]["reference"] for r in given if r["subject"] == first["subject"]
    )
    assert by_request == {f"urn:uuid:{first['id']}": 10, f"urn:uuid:{second['id']}": 12}
    intensive, continuation = (d["timing"]["repeat"] for d in tiw["dosageInstruction"])
    assert (intensive["frequency"], intensive["periodUnit"]) == (1, "d")
    assert intensive["boundsPeriod"] == {"start": "2026-03-02", "end": "2026-04-26"}
    assert (continuation["frequency"], continuation["dayOfWeek"]) == (3, ["mon", "wed", "fri"])


def test_since_limits_the_doses_and_ids_stay_the_same(engine, clinic) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        enrol(conn, clinic, "P-1", date(2026, 1, 7), "3HP")  # ended on 31 March
        enrol(conn, clinic, "P-2", NOW.date() - timedelta(days=9), "6HRZE")
        since = NOW.date() - timedelta(days=3)
        recent, whole = export(conn, since), export(conn)
    validate(recent)
    assert len(of(recent, "Patient")) == 1  # the course that ended before `since` is left out
    days = [r["effectiveDateTime"] for r in of(recent, "MedicationAdministration")]
    assert days == [(since + timedelta(days=n)).isoformat() for n in range(3)]
    ids = {e["resource"]["id"] for e in whole["entry"]}
    assert {e["resource"]["id"] for e in recent["entry"]} <= ids  # stable across exports


@given(
    regimens=st.lists(st.sampled_from(sorted(builtins())), min_size=1, max_size=2),
    change=st.integers(1, 100),
    text=st.text(alphabet="VIFXPUR.", max_size=320),
    through=st.integers(-5, 320),
    today=st.booleans(),
    ended=st.none() | st.integers(0, 200),
)
def test_the_doses_are_the_days_the_ledger_expects(  # type: ignore[no-untyped-def]
    regimens, change, text, through, today, ended
) -> None:
    start = date(2026, 2, 4)
    segments = [
        Segment(start + timedelta(days=change * i), builtins()[r]) for i, r in enumerate(regimens)
    ]
    end = start + timedelta(days=ended) if ended is not None else None
    course = Course(1, 1, tuple(segments), end_date=end)
    last = start + timedelta(days=through)
    when = Counting(last, last + timedelta(days=1) if today else None)
    figures = ledger.from_days(course, text, when)
    row = ledger.Row("P-1", "C", "D", None, figures)
    found = list(fhir.dose_days(ledger.Counted(row, course, text, when)))
    chars = Counter(char for _, char in found)
    assert len(found) == figures.expected
    assert chars["V"] + chars["I"] + chars["F"] == figures.taken
    assert (chars["P"], chars["R"], chars["U"]) == (
        figures.pending,
        figures.rejected,
        figures.unclear,
    )
    assert all(course.scheduled(day) and day <= course.last for day, _ in found)


def test_cli_writes_a_valid_bundle_and_refuses_bad_input(
    settings, engine, clinic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        enrol(conn, clinic, "P-1", date(2026, 6, 3), "3HP")
    env = {
        "VOT_DATA_DIR": str(settings.data_dir),
        "VOT_DATABASE_URL": settings.database_url,
        "VOT_SECRET_KEY": "t",
        "VOT_PUBLIC_URL": "https://vot.example.org",
    }
    out = tmp_path / "out" / "bundle.json"
    out.parent.mkdir()
    made = run_cli("export", "fhir", "--clinic", "North Clinic", "--output", str(out), env=env)
    assert made.returncode == 0, made.stderr
    bundle = json.loads(out.read_text())
    assert validate(bundle)["MedicationAdministration"] == 12
    system = of(bundle, "Patient")[0]["identifier"][0]["system"]
    assert system == "https://vot.example.org/fhir/sid/pseudonym"
    for args, code, message in (
        (("--clinic", "Nowhere"), 1, "no clinic 'Nowhere'"),
        (("--since", "2026-13-01"), 2, "YYYY-MM-DD"),
        (("--output", str(out.parent / "no" / "such.json")), 1, "cannot write"),
        (("--output", str(out.parent)), 1, "it is a folder"),
    ):
        bad = run_cli("export", "fhir", *args, env=env)
        assert bad.returncode == code and message in bad.stderr, bad.stderr
        if code == 1:
            assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("vot: error:")
    assert [p.name for p in out.parent.iterdir()] == ["bundle.json"]  # no partial files left
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file the user writes


def test_api_pages_by_patient_for_analysts_only(settings, engine, clinic) -> None:  # type: ignore[no-untyped-def]
    from review_ui import create_app

    with engine.begin() as conn:
        for n in range(3):
            enrol(conn, clinic, f"P-{n}", NOW.date() - timedelta(days=5 + n), "6HRZE")
        accounts.ensure_user(conn, "ana", PASSWORD, "analyst", None)
        accounts.ensure_user(conn, "sup", PASSWORD, "supervisor", clinic)
    client = create_app(settings).test_client()
    sign_in(client, "sup")
    assert client.get("/api/v1/fhir/Bundle").status_code == 403
    client = create_app(settings).test_client()
    sign_in(client, "ana")
    first = client.get("/api/v1/fhir/Bundle?limit=2&clinic=North+Clinic")
    assert first.status_code == 200 and first.mimetype == "application/fhir+json"
    page = first.get_json()
    assert validate(page)["Patient"] == 2
    (link,) = page["link"]
    assert (
        link["relation"] == "next" and "offset=2" in link["url"] and "clinic=North" in link["url"]
    )
    assert link["url"].startswith(f"{settings.public_url}/api/v1/fhir/Bundle?")
    rest = client.get(link["url"].removeprefix(settings.public_url)).get_json()
    assert validate(rest)["Patient"] == 1 and "link" not in rest
    people = {p["id"] for p in of(page, "Patient") + of(rest, "Patient")}
    assert len(people) == 3
    spec = json.loads(OPENAPI.read_text())
    assert "/api/v1/fhir/Bundle" in spec["paths"]
    schema_ref = {"$ref": "#/components/schemas/FhirBundle", "components": spec["components"]}
    for body in (page, rest):
        OAS30Validator(schema_ref).validate(body)
    for query in ("since=yesterday", "limit=5000", "limit=0", "clinic=Nowhere", "offset=-1"):
        reply = client.get(f"/api/v1/fhir/Bundle?{query}")
        assert reply.status_code == 400 and reply.get_json()["error"], query
    log = schema.audit_log
    with engine.connect() as conn:
        found = conn.execute(select(log.c.detail).where(log.c.action == "export.fhir")).scalars()
        details = list(found)
    assert [d["patients"] for d in details] == [2, 1]
