"""The analyst's dashboard and API through Flask's test client, on SQLite and PostgreSQL: what an
analyst can see (pseudonyms, figures, charts) and cannot (videos, codes, names, review pages)."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import func, select
from test_ledger import add_patient, add_video

from review_ui import create_app
from vot import accounts, schema
from vot.config import REPO_ROOT, Settings
from vot.db import as_utc, utcnow

PASSWORD = "analyst-password-1"
OPENAPI = REPO_ROOT / "review_ui" / "static" / "openapi.json"
NAMES = ("ALICE", "WANG", "BORIS", "PETROV")


@dataclass
class World:
    patients: list[int]
    codes: list[str]
    videos: list[int]


@pytest.fixture
def world(engine) -> World:  # type: ignore[no-untyped-def]
    today = utcnow().date()
    with engine.begin() as conn:
        north = accounts.ensure_clinic(conn, "North Clinic", "Lakeside")
        south = accounts.ensure_clinic(conn, "South Clinic", "Hills")
        for name, role, clinic in (
            ("ana", "analyst", None),
            ("adm", "admin", None),
            ("sup", "supervisor", north),
        ):
            accounts.ensure_user(conn, name, PASSWORD, role, clinic)
        codes = ["ALICE-WANG-17", "BORIS-PETROV-23"]
        patients, videos = [], []
        for code, clinic, taken in ((codes[0], north, 28), (codes[1], south, 9)):
            pid = add_patient(conn, clinic, today - timedelta(days=30), code=code)
            patients.append(pid)
            for day in range(taken):
                videos.append(
                    add_video(conn, pid, today - timedelta(days=30 - day), schema.AUTO_ACCEPTED)
                )
    return World(patients, codes, videos)


@pytest.fixture
def app(settings: Settings, engine, world: World) -> Flask:  # type: ignore[no-untyped-def]
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in(client: FlaskClient, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    reply = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert reply.status_code == 302


def assert_anonymous(text: str, world: World) -> None:
    for code in world.codes:
        assert code not in text
    for name in NAMES:
        assert name not in text.upper()


def test_dashboard_shows_charts_and_figures_without_names(
    client: FlaskClient, world: World, artifacts_dir
) -> None:
    sign_in(client, "ana")
    page = client.get("/analyst")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    (artifacts_dir / "analyst_dashboard.html").write_text(html)
    assert html.count("<svg") == 6 and "<script>" not in html and "style=" not in html
    for chart in (
        "chart-distribution",
        "chart-trend",
        "chart-groups",
        "chart-flagged",
        "chart-videos",
        "chart-auto",
    ):
        assert f'id="{chart}"' in html
    assert "<dt>Patients</dt><dd>2</dd>" in html
    assert_anonymous(html, world)
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    district = client.get("/analyst?district=Hills").get_data(as_text=True)
    assert "<dt>Patients</dt><dd>1</dd>" in district and "South Clinic" in district


def test_dashboard_api_matches_the_export(client: FlaskClient, world: World) -> None:
    sign_in(client, "ana")
    board = client.get("/api/v1/dashboard").get_json()
    rows = client.get("/api/v1/adherence").get_json()["items"]
    assert board["summary"]["patients"] == 2 == len(rows)
    assert board["summary"]["taken"] == sum(r["taken"] for r in rows) == 37
    assert board["summary"]["expected"] == sum(r["expected"] for r in rows) == 60
    assert board["summary"]["below"] == sum(r["flag_below_80"] for r in rows) == 1
    assert sum(d["patients"] for d in board["distribution"]) == 2
    assert {g["name"] for g in board["groups"]} == {"Hills", "Lakeside"}
    assert sum(w["taken"] for w in board["weeks"]) == 37 and len(board["weeks"]) == 12
    assert sum(w["videos"] for w in board["weeks"]) == 37
    assert_anonymous(json.dumps(board), world)


def test_api_and_csv_agree_and_state_the_as_of(client: FlaskClient, world: World) -> None:
    sign_in(client, "ana")
    as_of = (utcnow().date() - timedelta(days=5)).isoformat()
    body = client.get(f"/api/v1/adherence?as_of={as_of}").get_json()
    reply = client.get(f"/api/v1/adherence.csv?as_of={as_of}")
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    assert reply.headers["X-VOT-As-Of"] == as_of and body["as_of"] == as_of
    assert "describedby" in reply.headers["Link"]
    text = reply.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["pseudonym"] for r in rows] == [i["pseudonym"] for i in body["items"]]
    for row, item in zip(rows, body["items"], strict=True):
        assert row.keys() == item.keys()
        for key, value in item.items():
            assert row[key] == ("" if value is None else str(value)), key
    assert {i["expected"] for i in body["items"]} == {26}  # 30 days ago to 5 days ago
    assert_anonymous(text + json.dumps(body), world)
    page = client.get("/api/v1/adherence?limit=1").get_json()
    assert len(page["items"]) == 1 and page["next_offset"] == 1
    rest = client.get("/api/v1/adherence?limit=1&offset=1").get_json()
    assert rest["items"][0]["pseudonym"] == body["items"][1]["pseudonym"]
    assert rest["next_offset"] == 1 + 1


@pytest.mark.parametrize("username", ["ana"])
def test_analyst_cannot_reach_videos_codes_or_review_pages(
    client: FlaskClient, world: World, username: str
) -> None:
    sign_in(client, username)
    sub, pid = world.videos[0], world.patients[0]
    for path in (
        "/review",
        f"/review/{sub}",
        f"/review/{sub}/video",
        f"/review/{sub}/poster.jpg",
        f"/review/{sub}/still/500.jpg",
        "/review/auto",
        "/review/bulk?min=0.9",
        "/patients",
        f"/patients/{pid}",
        f"/patients?code={world.codes[0][:5]}",
    ):
        for headers in ({}, {"Accept": "application/json"}):
            reply = client.get(path, headers=headers)
            assert reply.status_code in (403, 404), (path, reply.status_code)
            assert_anonymous(reply.get_data(as_text=True), world)
    with client.session_transaction() as session:
        token = session["csrf"]
    reply = client.post(f"/review/{sub}/verdict", data={"verdict": "reject", "csrf_token": token})
    assert reply.status_code == 403
    assert client.get("/").status_code in (302, 403)


def test_only_analysts_and_admins_reach_the_analyst_api(client: FlaskClient, world: World) -> None:
    assert client.get("/api/v1/adherence").status_code == 401
    assert client.get("/analyst").status_code == 302  # to the sign-in page
    sign_in(client, "sup")
    for path in ("/analyst", "/api/v1/adherence", "/api/v1/adherence.csv", "/api/v1/dashboard"):
        assert client.get(path).status_code == 403, path
    client.post("/logout", data={"csrf_token": _csrf(client)})
    sign_in(client, "adm")
    assert client.get("/api/v1/adherence").status_code == 200


def _csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return str(session.get("csrf", ""))


def test_bad_arguments_are_400_with_a_reason(client: FlaskClient, world: World) -> None:
    sign_in(client, "ana")
    for query in ("as_of=31/12/2024", "start_from=soon", "limit=-1", "limit=99999"):
        reply = client.get(f"/api/v1/adherence?{query}")
        assert reply.status_code == 400, query
        assert "must be" in reply.get_json()["error"]


def test_refresh_needs_csrf_and_is_audited(client: FlaskClient, world: World, engine) -> None:
    sign_in(client, "ana")
    client.get("/analyst")
    assert client.post("/analyst/refresh").status_code == 400
    assert client.post("/analyst/refresh", data={"csrf_token": _csrf(client)}).status_code == 302
    log = schema.audit_log
    with engine.connect() as conn:
        actions = conn.execute(
            select(log.c.action, func.count()).where(log.c.actor == "ana").group_by(log.c.action)
        ).all()
    assert ("analytics.refresh", 1) in [tuple(a) for a in actions]


def test_openapi_is_valid_and_describes_the_responses(client: FlaskClient, world: World) -> None:
    spec = json.loads(OPENAPI.read_text())
    validate_spec(spec)
    sign_in(client, "ana")
    for path, schema_name in (
        ("/api/v1/adherence", "AdherenceList"),
        ("/api/v1/dashboard", "Dashboard"),
        ("/api/v1/definitions", "Definitions"),
    ):
        body = client.get(path).get_json()
        OAS30Validator(
            {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
        ).validate(body)
        assert path in spec["paths"]
    header = client.get("/api/v1/adherence.csv").get_data(as_text=True).splitlines()[0]
    assert header.split(",") == list(spec["components"]["schemas"]["AdherenceRow"]["properties"])
    assert client.get("/static/openapi.json").status_code == 200


def test_regimen_start_filter(client: FlaskClient, world: World) -> None:
    sign_in(client, "ana")
    start = (utcnow().date() - timedelta(days=30)).isoformat()
    later = (date.fromisoformat(start) + timedelta(days=1)).isoformat()
    assert len(client.get(f"/api/v1/adherence?start_from={start}").get_json()["items"]) == 2
    assert client.get(f"/api/v1/adherence?start_from={later}").get_json()["items"] == []
    assert len(client.get("/api/v1/adherence?clinic=South+Clinic").get_json()["items"]) == 1


def test_missing_snapshot_is_computed_and_a_stale_one_recomputed_in_the_background(
    client: FlaskClient, world: World, engine
) -> None:
    sign_in(client, "ana")
    snap = schema.adherence_snapshot
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(snap)).scalar() == 0
    first = client.get("/api/v1/dashboard").get_json()  # none yet: computed by this request
    assert first["computed_at"] is not None and first["summary"]["patients"] == 2
    # A patient enrols after it, and the snapshot grows old.
    old = utcnow() - timedelta(hours=2)
    with engine.begin() as conn:
        clinic = conn.execute(select(schema.clinics.c.id).limit(1)).scalar_one()
        add_patient(conn, clinic, utcnow().date() - timedelta(days=3))
        conn.execute(snap.update().values(computed_at=old))
    # The page is served from the old figures, says so, and does not wait for new ones.
    page = client.get("/analyst").get_data(as_text=True)
    assert f"Figures as of {old:%Y-%m-%d %H:%M} UTC (older than 15 minutes" in page
    assert "being recomputed" in page and "<dt>Patients</dt><dd>2</dd>" in page
    for thread in threading.enumerate():
        if thread.name == "adherence-refresh":
            thread.join(timeout=60)
            assert not thread.is_alive(), "the background refresh did not finish"
    fresh = client.get("/api/v1/dashboard").get_json()
    assert fresh["summary"]["patients"] == 3
    assert as_utc(datetime.fromisoformat(fresh["computed_at"])) > old + timedelta(hours=1)
    page = client.get("/analyst").get_data(as_text=True)
    assert "being recomputed" not in page and "<dt>Patients</dt><dd>3</dd>" in page


def test_export_from_the_snapshot_equals_the_live_one_and_says_so(
    client: FlaskClient, world: World
) -> None:
    sign_in(client, "ana")
    absent = client.get("/api/v1/adherence?source=snapshot")
    assert absent.status_code == 409 and "refresh" in absent.get_json()["error"]
    assert client.get("/api/v1/adherence.csv?source=snapshot").status_code == 409
    auto = client.get("/api/v1/adherence?source=auto").get_json()  # no snapshot: computed now
    assert auto["source"] == "live" and len(auto["items"]) == 2
    board = client.get("/api/v1/dashboard").get_json()  # none yet: computed now
    live = client.get("/api/v1/adherence").get_json()
    body = client.get("/api/v1/adherence?source=snapshot").get_json()
    assert (live["source"], body["source"]) == ("live", "snapshot")
    assert body["computed_at"] == board["computed_at"] and body["as_of"] is None
    assert body["items"] == live["items"] and len(body["items"]) == 2
    spec = json.loads(OPENAPI.read_text())
    OAS30Validator(
        {"$ref": "#/components/schemas/AdherenceList", "components": spec["components"]}
    ).validate(body)
    south = client.get("/api/v1/adherence?source=snapshot&clinic=South+Clinic").get_json()
    assert [i["clinic"] for i in south["items"]] == ["South Clinic"]
    assert south["filters"] == {"clinic": "South Clinic"}
    reply = client.get("/api/v1/adherence.csv?source=snapshot")
    assert reply.headers["X-VOT-Source"] == "snapshot"
    assert reply.headers["X-VOT-Computed-At"] == board["computed_at"]
    assert reply.get_data() == client.get("/api/v1/adherence.csv").get_data()
    stamp = board["computed_at"][:16].replace(":", "")
    assert f'filename="adherence-snapshot-{stamp}Z.csv"' in reply.headers["Content-Disposition"]
    # The dashboard's download form asks for "auto": the snapshot, unless an as-of date is set.
    page = client.get("/analyst").get_data(as_text=True)
    assert '<option value="auto" selected>' in page
    auto = client.get("/api/v1/adherence.csv?source=auto")
    assert auto.headers["X-VOT-Source"] == "snapshot" and auto.get_data() == reply.get_data()
    today = date.today().isoformat()
    dated = client.get(f"/api/v1/adherence.csv?source=auto&as_of={today}")
    assert dated.headers["X-VOT-Source"] == "live" and dated.headers["X-VOT-As-Of"] == today
    assert f'filename="adherence-{today}.csv"' in dated.headers["Content-Disposition"]
    for query in ("source=yesterday", f"source=snapshot&as_of={date.today().isoformat()}"):
        bad = client.get(f"/api/v1/adherence?{query}")
        assert bad.status_code == 400, query
