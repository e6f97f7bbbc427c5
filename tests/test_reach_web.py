"""The web side of reminders and of the page that opens offline, through Flask's test client:
the patient's reminder API and push subscriptions, the service worker and manifest, the
supervisor's reminder settings and list, and what analysts and an erasure leave of a number."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from review_ui import create_app
from tests import outreach_servers
from tests import test_analyst_ui as analyst_ui
from vot import accounts, schema, tokens
from vot.outreach import contact, push, reminders
from vot.outreach.dispatch import send_due
from vot.retention.erasure import erase_patient
from vot.storage import open_storage

PASSWORD = analyst_ui.PASSWORD
PHONE = "+8613812345678"
START = date(2026, 3, 2)
AT_8 = datetime(2026, 3, 10, 0, 1, tzinfo=UTC)  # 08:01 in Shanghai
gateway, push_service = outreach_servers.gateway, outreach_servers.push_service


@pytest.fixture
def servers(gateway, push_service):
    return gateway, push_service


@pytest.fixture
def reach(settings, servers):
    gateway, push_service = servers
    push.public_key(settings)  # as the web app does when a page is served
    return settings.with_(sms_webhook_url=gateway.url, push_services=(push_service.origin,))


@pytest.fixture
def world(engine, reach):
    with engine.begin() as conn:
        north = accounts.ensure_clinic(conn, "North", "Lakeside")
        south = accounts.ensure_clinic(conn, "South", "Hills")
        accounts.ensure_user(conn, "sup", PASSWORD, "supervisor", north)
        accounts.ensure_user(conn, "other", PASSWORD, "supervisor", south)
        accounts.ensure_user(conn, "ana", PASSWORD, "analyst", None)
        patient, _ = accounts.add_patient(conn, "P-1", north, START, "Asia/Shanghai")
        token = tokens.link_token(conn, reach.secret_key, "P-1")
    return patient.id, token


@pytest.fixture
def client(reach, world) -> FlaskClient:
    return create_app(reach).test_client()


def sign_in(client: FlaskClient, username: str) -> str:
    """Sign in (as the analysts' tests do); the session's CSRF token for forms."""
    analyst_ui.sign_in(client, username)
    page = client.get("/patients").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored(engine, patient_id: int) -> tuple:
    with engine.connect() as conn:
        found = contact.get(conn, patient_id)
    return found.phone, found.remind_at, found.language


def test_the_patient_sets_a_reminder_time(client, world, engine) -> None:
    patient_id, token = world
    got = client.get("/api/v1/me/reminders", headers=bearer(token))
    assert got.json == {"remind_at": None, "sms": False, "push": False, "second_after_min": 120}
    put = client.put(
        "/api/v1/me/reminders",
        json={"remind_at": "07:45", "language": "zh-Hans"},
        headers=bearer(token),
    )
    assert put.status_code == 200 and put.json["remind_at"] == "07:45"
    assert stored(engine, patient_id) == (None, "07:45", "zh-CN")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"remind_at": "25:00"}, "HH:MM"),
        ({"remind_at": "7:30"}, "HH:MM"),
        ({"remind_at": 730}, "HH:MM"),
        ({"remind_at": "07:30", "language": "fr"}, "language"),
        ({"time": "07:30"}, "remind_at"),
        (["07:30"], "remind_at"),
        ("07:30", "remind_at"),
    ],
)
def test_bad_reminder_input_is_400_and_changes_nothing(client, world, engine, body, message):
    patient_id, token = world
    got = client.put("/api/v1/me/reminders", json=body, headers=bearer(token))
    assert got.status_code == 400 and message in got.json["error"]
    assert stored(engine, patient_id) == (None, None, None)


def test_reminder_api_needs_the_link(client, world) -> None:
    assert client.get("/api/v1/me/reminders").status_code == 401
    got = client.put("/api/v1/me/reminders", json={"remind_at": "08:00"}, headers=bearer("nope"))
    assert got.status_code == 401 and "error" in got.json


def test_push_subscription_stored_checked_and_removed(client, world, engine, servers) -> None:
    patient_id, token = world
    subscription = servers[1].subscription()
    bad = dict(subscription, endpoint="http://10.0.0.1/steal")
    refused = client.post("/api/v1/me/push-subscriptions", json=bad, headers=bearer(token))
    assert refused.status_code == 400 and "push service" in refused.json["error"]
    junk = client.post("/api/v1/me/push-subscriptions", data="x", headers=bearer(token))
    assert junk.status_code == 400
    with engine.connect() as conn:
        assert conn.execute(select(schema.push_subscriptions)).all() == []
    made = client.post("/api/v1/me/push-subscriptions", json=subscription, headers=bearer(token))
    assert made.status_code == 201 and made.json["push"] is True
    again = client.post("/api/v1/me/push-subscriptions", json=subscription, headers=bearer(token))
    assert again.status_code == 201
    with engine.connect() as conn:
        rows = conn.execute(select(schema.push_subscriptions)).all()
    assert [r.revoked_at is None for r in rows] == [False, True]  # the same phone once
    gone = client.delete(
        "/api/v1/me/push-subscriptions",
        json={"endpoint": subscription["endpoint"]},
        headers=bearer(token),
    )
    assert gone.json["push"] is False


def test_service_worker_and_manifest(client, world) -> None:
    _pid, token = world
    worker = client.get("/p/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert "default-src 'self'" in worker.headers["Content-Security-Policy"]
    assert b'addEventListener("fetch"' in worker.data
    page = client.get(f"/p/{token}?lang=zh-Hans").get_data(as_text=True)
    link = re.search(r'<link rel="manifest" href="([^"]+)"', page)
    assert link and "<script>" not in page  # no inline script: the CSP stays strict
    manifest = client.get(link.group(1).replace("&amp;", "&"))
    assert manifest.mimetype == "application/manifest+json"
    body = manifest.json
    assert body["start_url"] == body["scope"] == body["id"] == f"/p/{token}"
    assert body["name"] == "每日服药" and body["display"] == "standalone"
    sizes = {icon["sizes"] for icon in body["icons"]}
    assert {"192x192", "512x512", "any"} <= sizes
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200
    assert client.get("/p/not-a-token/manifest.webmanifest").status_code == 401


def test_supervisor_sets_contact_and_sees_every_reminder(client, world, engine, reach, servers):
    patient_id, _token = world
    csrf = sign_in(client, "sup")
    form = {
        "csrf_token": csrf,
        "phone": "+86 138 1234 5678",
        "remind_at": "08:00",
        "language": "zh-CN",
    }
    saved = client.post(f"/patients/{patient_id}/contact", data=form)
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#reminders")
    assert stored(engine, patient_id) == (PHONE, "08:00", "zh-CN")
    with engine.connect() as conn:
        [entry] = conn.execute(
            select(schema.audit_log).where(schema.audit_log.c.action == "patient.contact")
        ).all()
    assert entry.actor == "sup" and PHONE not in str(entry.detail)
    # Bad input: a message, nothing changed; as JSON for a script.
    bad = client.post(f"/patients/{patient_id}/contact", data={**form, "phone": "12345"})
    assert bad.status_code == 302
    assert "Reminders not changed" in client.get(f"/patients/{patient_id}").get_data(as_text=True)
    script = client.post(
        f"/patients/{patient_id}/contact",
        data={**form, "remind_at": "24:00"},
        headers={"X-Requested-With": "fetch"},
    )
    assert script.status_code == 400 and "HH:MM" in script.json["error"]
    assert stored(engine, patient_id) == (PHONE, "08:00", "zh-CN")
    assert send_due(engine, reach, AT_8).sent == 1
    servers[0].mode = "fail"
    assert send_due(engine, reach, AT_8 + timedelta(hours=2)).retrying == 1
    page = client.get(f"/patients/{patient_id}").get_data(as_text=True)
    section = page[page.index('id="reminders"') :]
    assert 'data-date="2026-03-10" data-status="sent"' in section
    assert 'data-date="2026-03-10" data-status="retrying"' in section
    assert "SMS gateway answered 500" in section and PHONE in section
    # Another clinic's supervisor can neither see nor change it.
    client.get("/logout")
    other = create_app(reach).test_client()
    csrf_other = sign_in(other, "other")
    refused = other.post(f"/patients/{patient_id}/contact", data={**form, "csrf_token": csrf_other})
    assert refused.status_code == 404


def test_analysts_never_see_a_phone_number(client, world, engine) -> None:
    patient_id, _token = world
    with engine.begin() as conn:
        contact.update(conn, patient_id, "test", phone=PHONE, remind_at="08:00")
    sign_in(client, "ana")
    for path in ("/analyst", "/api/v1/adherence", "/api/v1/adherence.csv", "/api/v1/dashboard"):
        got = client.get(path)
        assert got.status_code == 200, path
        assert PHONE not in got.get_data(as_text=True) and "13812345678" not in got.get_data(
            as_text=True
        )
    assert client.get(f"/patients/{patient_id}").status_code in (302, 403)


def test_erasure_deletes_the_number_and_the_subscriptions(world, engine, reach, servers) -> None:
    patient_id, _token = world
    with engine.begin() as conn:
        contact.update(conn, patient_id, "test", phone=PHONE, remind_at="08:00")
        push.subscribe(conn, reach, patient_id, servers[1].subscription())
    erase_patient(engine, open_storage(reach), reach, "P-1", actor="admin", reason="asked")
    assert stored(engine, patient_id)[0] is None
    with engine.connect() as conn:
        assert conn.execute(select(schema.push_subscriptions)).all() == []


def test_every_catalogue_has_the_strings_of_the_reminders_and_offline_page() -> None:
    from review_ui import i18n
    from vot.config import REPO_ROOT

    ui = REPO_ROOT / "review_ui"
    used = set(re.findall(r"""\bt\("([a-z_.]+)"[,)]""", (ui / "static/reach.js").read_text()))
    template = (ui / "templates/_patient_reach.html").read_text()
    used |= set(re.findall(r"t\['([a-z_.]+)'\]", template))
    used |= {"manifest.short_name", "page.title", "page.intro"}  # the manifest's
    assert len(used) > 15
    for lang, messages in i18n.catalogues().items():
        assert used <= messages.keys(), (lang, used - messages.keys())
    texts = reminders.texts()
    assert set(texts) == set(contact.LANGUAGES)
    assert all(set(words) == {"title", "first", "second"} for words in texts.values())
