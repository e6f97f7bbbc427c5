"""Side effects and messages: the patient's API, the supervisor's pages, the follow-up list and
the marks on the queue and the item page; bad input refused with nothing changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from test_review import PASSWORD, add_sub
from test_review_ui import csrf, login

from review_ui import create_app
from vot import accounts, schema, tokens
from vot.review import followup
from vot.review import verdicts as review_verdicts
from vot.review.scope import Reviewer
from vot.treatment.course import patient_today


@pytest.fixture
def world(settings, engine):  # type: ignore[no-untyped-def]
    today = patient_today("UTC")
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Outreach Clinic")
        uid, _ = accounts.ensure_user(conn, "sup-r", PASSWORD, "supervisor", clinic)
        pid = accounts.add_patient(conn, "R-1", clinic, today - timedelta(days=3))[0].id
        token = tokens.link_token(conn, settings.secret_key, "R-1")
    return {"pid": pid, "token": token, "sup": Reviewer(uid, "sup-r", "supervisor", clinic)}


@pytest.fixture
def client(settings, engine, world) -> FlaskClient:  # type: ignore[no-untyped-def]
    return create_app(settings).test_client()


def bearer(world) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {world['token']}"}


def count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"symptoms": ["headache"], "severity": "mild"}, "unknown symptom 'headache'"),
        ({"symptoms": [], "severity": "mild"}, "at least one"),
        ({"symptoms": ["rash_itching"], "severity": "terrible"}, "severity"),
        ({"symptoms": "rash_itching", "severity": "mild"}, "at least one"),
        ({"symptoms": ["rash_itching"], "severity": "mild", "note": "x" * 1001}, "at most 1000"),
        ({"symptoms": ["rash_itching"], "severity": "mild", "submission_id": "7"}, "whole number"),
        ({"symptoms": ["rash_itching"], "severity": "mild", "key": "short"}, "8 to 64"),
        ({"symptoms": ["rash_itching"], "severity": "mild", "key": "a b c d e f g h"}, "8 to 64"),
        ({"symptoms": ["rash_itching"], "severity": "mild", "key": 12345678}, "8 to 64"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_side_effect_reports_are_refused(client, world, engine, body, message) -> None:
    reply = client.post("/api/v1/me/side-effects", json=body, headers=bearer(world))
    assert reply.status_code == 400 and message in reply.get_json()["error"]
    assert count(engine, schema.side_effects) == 0


def test_a_report_sent_again_with_its_key_is_recorded_once(client, world, engine) -> None:
    body = {"symptoms": ["rash_itching"], "severity": "mild", "key": "0123456789abcdef"}
    first = client.post("/api/v1/me/side-effects", json=body, headers=bearer(world))
    again = client.post("/api/v1/me/side-effects", json=body, headers=bearer(world))
    other = client.post(
        "/api/v1/me/side-effects", json={**body, "key": "fedcba9876543210"}, headers=bearer(world)
    )
    assert first.get_json()["id"] == again.get_json()["id"] != other.get_json()["id"]
    assert count(engine, schema.side_effects) == 2
    with engine.connect() as conn:
        logged = conn.execute(
            select(func.count()).where(schema.audit_log.c.action == "side_effect.report")
        ).scalar_one()
    assert logged == 2


def test_a_severe_report_tops_the_follow_up_list_until_acknowledged(client, world, engine) -> None:
    mild = client.post(
        "/api/v1/me/side-effects",
        json={"symptoms": ["nausea_vomiting"], "severity": "mild"},
        headers=bearer(world),
    )
    assert mild.status_code == 201 and mild.get_json()["urgent"] is False
    eyes = client.post(
        "/api/v1/me/side-effects",
        json={
            "symptoms": ["jaundice", "dark_urine"],
            "severity": "moderate",
            "note": "since Monday",
        },
        headers=bearer(world),
    )
    assert eyes.status_code == 201 and eyes.get_json()["urgent"] is True
    assert [
        r["symptoms"]
        for r in client.get("/api/v1/me/side-effects", headers=bearer(world)).get_json()
    ] == [
        ["jaundice", "dark_urine"],
        ["nausea_vomiting"],
    ]
    with engine.begin() as conn:
        add_sub(conn, world["pid"], patient_today("UTC"), 0.5)
        top = followup.follow_ups(conn, world["sup"])[0]
    assert top.patient_id == world["pid"] and top.reasons[0] == "side_effect"
    login(client, "sup-r")
    queue = client.get("/review").get_data(as_text=True)
    assert 'class="tag side-effect"' in queue
    page = client.get(f"/patients/{world['pid']}").get_data(as_text=True)
    assert 'id="urgent-side-effects"' in page and "Yellow eyes or skin" in page
    client.post(
        f"/patients/{world['pid']}/side-effects/acknowledge", data={"csrf_token": csrf(client)}
    )
    assert 'id="urgent-side-effects"' not in client.get(f"/patients/{world['pid']}").get_data(
        as_text=True
    )
    with engine.begin() as conn:
        items = followup.follow_ups(conn, world["sup"])
    assert all(f.reasons[:1] != ("side_effect",) for f in items)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * 1001, "at most 1000"),
        ("<b>hello</b>", "plain text"),
        ("see <script>alert(1)</script>", "plain text"),
        ("&lt;b&gt;", "plain text"),
        ("   ", "empty"),
        (42, "is text"),
        ("bell\x07", "control characters"),
    ],
)
def test_bad_messages_are_refused(client, world, engine, text, message) -> None:
    reply = client.post("/api/v1/me/messages", json={"text": text}, headers=bearer(world))
    assert reply.status_code == 400 and message in reply.get_json()["error"]
    assert count(engine, schema.messages) == 0


def test_a_thread_both_ways_with_unread_counts(client, world, engine) -> None:
    text = "The pills make me dizzy, 2 < 3 times a day"  # a < that is no markup is text
    sent = client.post("/api/v1/me/messages", json={"text": text}, headers=bearer(world))
    assert sent.status_code == 201
    login(client, "sup-r")
    patients = client.get("/patients").get_data(as_text=True)
    assert ">1 new</a>" in patients and 'id="unread-total"' in patients
    page = client.get(f"/patients/{world['pid']}").get_data(as_text=True)
    assert "The pills make me dizzy, 2 &lt; 3 times a day" in page  # read here, shown as text
    assert 'id="unread-total"' not in client.get("/patients").get_data(as_text=True)
    client.post(
        f"/patients/{world['pid']}/messages",
        data={"text": "Take them after food; we will call you today.", "csrf_token": csrf(client)},
    )
    assert client.get("/api/v1/me/messages/unread", headers=bearer(world)).get_json() == {
        "unread": 1
    }
    thread = client.get("/api/v1/me/messages", headers=bearer(world)).get_json()["messages"]
    assert [(m["from"], m["text"]) for m in thread] == [
        ("patient", text),
        ("staff", "Take them after food; we will call you today."),
    ]
    assert client.get("/api/v1/me/messages/unread", headers=bearer(world)).get_json() == {
        "unread": 0
    }
    assert "sup-r" not in str(thread)  # the patient never sees a staff member's user name


def test_a_rejected_video_sends_a_kind_message_to_record_again(client, world, engine) -> None:
    day = patient_today("UTC")
    with engine.begin() as conn:
        sub = add_sub(conn, world["pid"], day, 0.4)
        review_verdicts.record_verdict(conn, world["sup"], sub, "reject", "pill not seen")
    thread = client.get("/api/v1/me/messages", headers=bearer(world)).get_json()["messages"]
    assert [(m["kind"], m["dose_date"], m["reason_code"]) for m in thread] == [
        ("record_again", day.isoformat(), "pill_not_seen")
    ]


def test_the_patient_api_needs_the_link(client, world) -> None:
    assert client.get("/api/v1/me/messages").status_code == 401
    assert client.post("/api/v1/me/side-effects", json={}).status_code == 401


def test_the_same_report_sent_twice_at_once_is_recorded_once(world, engine, monkeypatch) -> None:
    from vot.outreach import side_effects

    with engine.begin() as conn:
        first = side_effects.report(conn, world["pid"], ["joint_pain"], "mild", None, None, "k" * 8)
    # The second request looked before the first had committed: its insert meets the key.
    looked = []
    known = side_effects._known

    def not_yet(conn, patient_id, key):  # type: ignore[no-untyped-def]
        looked.append(key)
        return None if len(looked) == 1 else known(conn, patient_id, key)

    monkeypatch.setattr(side_effects, "_known", not_yet)
    with engine.begin() as conn:
        again = side_effects.report(conn, world["pid"], ["joint_pain"], "mild", None, None, "k" * 8)
        conn.execute(
            schema.messages.insert().values(  # the transaction is still usable
                patient_id=world["pid"],
                sender="patient",
                kind="text",
                body="hi",
                created_at=first.reported_at,
            )
        )
    assert again.id == first.id and len(looked) == 2
    assert count(engine, schema.side_effects) == 1 and count(engine, schema.messages) == 1
