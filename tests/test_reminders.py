"""Dose reminders against a local SMS gateway and a local push service that decrypts: sent on
dose days still missing, skipped by the rules, retried when the gateway is down without holding
anything else up; and the command line."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests import outreach_servers
from tests.conftest import run_cli, video
from tests.outreach_servers import PushService, SmsGateway
from vot import accounts, schema
from vot.intake.ingest import ingest_file
from vot.outreach import contact, push, reminders, sms
from vot.outreach.dispatch import send_due
from vot.storage import open_storage
from vot.treatment import doses

START = date(2026, 3, 2)  # a Monday
DAY = date(2026, 3, 10)  # a Tuesday; 08:00 in Shanghai is 00:00 UTC
AT_8 = datetime(2026, 3, 10, 0, 1, tzinfo=UTC)
PHONE = "+8613812345678"
gateway, push_service = outreach_servers.gateway, outreach_servers.push_service


@pytest.fixture
def reach(settings, gateway, push_service):
    push.public_key(settings)  # the web app makes the VAPID key when a page asks for it
    return settings.with_(
        sms_webhook_url=gateway.url,
        sms_webhook_headers=(("X-Api-Key", "k-123"),),
        push_services=(push_service.origin,),
        vapid_subject="mailto:tb-programme@example.org",
    )


def enrol(
    engine,
    reach,
    code: str,
    *,
    regimen: str = "6HRZE",
    phone: str | None = PHONE,
    push_to: PushService | None = None,
    language: str = "zh-CN",
) -> int:
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        patient, _ = accounts.add_patient(
            conn, code, clinic, START, "Asia/Shanghai", regimen_id=regimen
        )
        contact.update(conn, patient.id, "test", phone=phone, remind_at="08:00", language=language)
        if push_to is not None:
            push.subscribe(conn, reach, patient.id, push_to.subscription())
    return patient.id


def rows(engine, patient_id: int | None = None) -> list:
    query = select(schema.reminders).order_by(schema.reminders.c.id)
    if patient_id is not None:
        query = query.where(schema.reminders.c.patient_id == patient_id)
    with engine.connect() as conn:
        return list(conn.execute(query))


def test_windows_and_the_rule_of_a_missing_dose() -> None:
    [first, second] = reminders.windows(DAY, "08:00", "Asia/Shanghai", 120)
    assert (first.opens, first.closes) == (
        AT_8 - timedelta(minutes=1),
        AT_8 + timedelta(hours=2) - timedelta(minutes=1),
    )
    assert second.opens == first.closes and second.closes - second.opens == reminders.LATE_LIMIT
    late = reminders.windows(DAY, "23:00", "Asia/Shanghai", 120)
    assert len(late) == 1 and late[0].closes == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    assert len(reminders.windows(DAY, "08:00", "Asia/Shanghai", 0)) == 1
    assert reminders.open_window(AT_8 - timedelta(minutes=2), "08:00", "Asia/Shanghai", 120) is None


def test_sent_once_by_push_and_sms_in_the_patients_language(
    engine, reach, gateway, push_service
) -> None:
    pid = enrol(engine, reach, "P-1", push_to=push_service)
    counts = send_due(engine, reach, AT_8)
    assert counts.as_json() == {"sent": 2, "skipped": 0, "retrying": 0, "failed": 0}
    [sms_in] = gateway.received
    assert sms_in.message == {"to": PHONE, "text": reminders.texts()["zh-CN"]["first"]}
    assert sms_in.headers["x-api-key"] == "k-123"
    [push_in] = push_service.received
    assert push_in.message["title"] == "该服药了"
    assert push_in.message["body"] == reminders.texts()["zh-CN"]["first"]
    assert push_in.message["tag"] == "vot-dose-2026-03-10"
    assert push_in.headers["urgency"] == "high"
    # Again a minute later, and from a second sweeper: nothing twice.
    assert send_due(engine, reach, AT_8 + timedelta(minutes=1)).sent == 0
    assert len(gateway.received) == 1 and len(push_service.received) == 1
    # The second round, two hours later, while the dose is still missing.
    assert send_due(engine, reach, AT_8 + timedelta(hours=2)).sent == 2
    assert push_service.received[1].message["body"] == reminders.texts()["zh-CN"]["second"]
    assert send_due(engine, reach, AT_8 + timedelta(hours=5)).sent == 0
    assert [(r.round, r.channel, r.status) for r in rows(engine, pid)] == [
        (1, "push", "sent"),
        (1, "sms", "sent"),
        (2, "push", "sent"),
        (2, "sms", "sent"),
    ]
    with engine.connect() as conn:
        shown = reminders.history(conn, pid)
    assert [(s.round, s.channel, s.status) for s in shown][:2] == [
        (2, "push", "sent"),
        (2, "sms", "sent"),
    ]
    assert shown[0].at == AT_8 + timedelta(hours=2)


def test_skipped_after_a_video_on_an_excused_day_and_on_a_day_without_a_dose(
    engine, reach, settings, gateway
) -> None:
    video_pid = enrol(engine, reach, "P-video")
    excused_pid = enrol(engine, reach, "P-excused")
    seen_pid = enrol(engine, reach, "P-seen")
    weekly_pid = enrol(engine, reach, "P-weekly", regimen="3HP")  # Mondays only
    ended_pid = enrol(engine, reach, "P-ended")
    missing_pid = enrol(engine, reach, "P-missing", language="en")
    ingest_file(engine, open_storage(settings), settings, "P-video", video(), dose_date=DAY)
    with engine.begin() as conn:
        nurse, _ = accounts.ensure_user(conn, "nurse", "a-long-password", "admin", None)
        doses.excuse(conn, excused_pid, DAY, "in_hospital", nurse, "nurse", now=AT_8)
        doses.record_dose(conn, seen_pid, DAY, "in_person", "nurse", now=AT_8)
        conn.execute(
            update(schema.regimens)
            .where(schema.regimens.c.patient_id == ended_pid)
            .values(outcome="died", outcome_date=DAY)
        )
    counts = send_due(engine, reach, AT_8)
    assert (counts.sent, counts.skipped) == (1, 4)
    assert [g.message["to"] for g in gateway.received] == [PHONE]
    assert gateway.received[0].message["text"] == reminders.texts()["en"]["first"]
    why = {r.patient_id: (r.status, r.error) for r in rows(engine)}
    assert why == {
        video_pid: ("skipped", "a video arrived"),
        excused_pid: ("skipped", "the day is excused"),
        seen_pid: ("skipped", "the dose was taken"),
        weekly_pid: ("skipped", "no dose is due that day"),
        missing_pid: ("sent", None),
    }
    # The video arrives before the second round: no second reminder.
    ingest_file(engine, open_storage(settings), settings, "P-missing", video(), dose_date=DAY)
    assert send_due(engine, reach, AT_8 + timedelta(hours=2)).as_json()["sent"] == 0
    assert rows(engine, missing_pid)[-1].error == "a video arrived"


def test_a_gateway_that_is_down_is_retried_and_holds_up_nothing_else(
    engine, reach, gateway, push_service, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(sms, "TIMEOUT_S", 1.5)
    gateway.mode, gateway.hang_s = "hang", 4.0
    first = enrol(engine, reach, "P-1")
    second = enrol(engine, reach, "P-2")
    pushed = enrol(engine, reach, "P-3", phone=None, push_to=push_service)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="vot.outreach.dispatch"):
        counts = send_due(engine, reach, AT_8)
    took = time.monotonic() - started
    # One timeout, not one per reminder; the push went out meanwhile, not after it.
    assert took < 1.5 + 1.5, took
    [delivered] = push_service.received
    assert delivered.at - started < 1.0
    assert (counts.sent, counts.retrying) == (1, 2)
    [tried] = [r for r in rows(engine) if r.attempts == 1 and r.channel == "sms"]
    assert tried.status == "retrying" and "unreachable" in tried.error
    [untried] = [r for r in rows(engine) if r.attempts == 0]
    assert untried.status == "retrying" and untried.error.startswith("not tried")
    assert "not sent: SMS gateway unreachable" in caplog.text and PHONE not in caplog.text
    assert {r.patient_id for r in rows(engine) if r.status == "retrying"} == {first, second}
    # Before its back-off is over nothing is tried; after it, the gateway is back.
    gateway.mode = "ok"
    assert send_due(engine, reach, AT_8 + timedelta(seconds=30)).sent == 0
    assert send_due(engine, reach, AT_8 + timedelta(minutes=1, seconds=5)).sent == 2
    assert len(gateway.received) == 2
    assert {r.patient_id: r.status for r in rows(engine)} == {
        first: "sent",
        second: "sent",
        pushed: "sent",
    }


def test_failing_gateway_backs_off_until_the_window_closes_then_fails(
    engine, reach, gateway
) -> None:
    gateway.mode = "fail"
    pid = enrol(engine, reach, "P-1")
    now, failed = AT_8, 0
    for _ in range(9):  # every half hour from 08:01 to 12:01
        failed += send_due(engine, reach, now).failed
        now += timedelta(minutes=30)
    assert failed == 2  # each round once, when its time was over
    for row in rows(engine, pid):
        assert (row.status, row.attempts) == ("failed", 4), row
        assert (
            row.error == "not sent before its time was over (last error: SMS gateway answered 500)"
        )


def test_refused_by_the_gateway_fails_at_once(engine, reach, gateway) -> None:
    gateway.mode = "refuse"
    pid = enrol(engine, reach, "P-1")
    assert send_due(engine, reach, AT_8).failed == 1
    [row] = rows(engine, pid)
    assert (row.status, row.attempts, row.error) == ("failed", 1, "SMS gateway answered 400")


def test_a_subscription_the_push_service_has_forgotten_is_revoked(
    engine, reach, push_service
) -> None:
    push_service.mode = "gone"
    pid = enrol(engine, reach, "P-1", phone=None, push_to=push_service)
    assert send_due(engine, reach, AT_8).failed == 1
    with engine.connect() as conn:
        assert push.live(conn, pid) == []


def test_push_subscriptions_only_to_known_push_services(engine, reach, push_service) -> None:
    pid = enrol(engine, reach, "P-1", phone=None)
    good = push_service.subscription()
    bad_endpoints = [
        "http://169.254.169.254/latest",
        "http://127.0.0.1:6379/",
        f"{push_service.origin}.evil.test/x",
        "https://fcm.googleapis.com.evil.test/x",
        "https://evil.test:1.push.apple.com/x",
        "https://user@web.push.apple.com/x",
    ]
    with engine.begin() as conn:
        for endpoint in bad_endpoints:
            with pytest.raises(push.PushError, match="not one the clinic"):
                push.subscribe(conn, reach, pid, {**good, "endpoint": endpoint})
        with pytest.raises(push.PushError, match="p256dh"):
            push.subscribe(conn, reach, pid, {**good, "keys": {"p256dh": "AAAA", "auth": "x"}})
        assert push.live(conn, pid) == []
    from vot.config import DEFAULT_PUSH_SERVICES

    assert push.allowed("https://web.push.apple.com/abc", DEFAULT_PUSH_SERVICES)
    assert push.allowed("https://fcm.googleapis.com/fcm/send/x", DEFAULT_PUSH_SERVICES)
    assert not push.allowed("http://fcm.googleapis.com/fcm/send/x", DEFAULT_PUSH_SERVICES)


def test_vapid_key_made_once_and_kept_private(settings) -> None:
    first = push.public_key(settings)
    assert push.public_key(settings) == first and len(first) == 87  # 65 bytes, base64url
    assert (settings.data_dir / push.KEY_FILE).stat().st_mode & 0o077 == 0


def test_the_sweeper_sends_reminders_beside_its_other_work(
    engine, reach, gateway, redis_url, monkeypatch
) -> None:
    from workers import sweeper

    monkeypatch.setattr(sms, "TIMEOUT_S", 3.0)
    gateway.mode, gateway.hang_s = "hang", 5.0
    enrol(engine, reach, "P-1")
    sweeps: list[float] = []
    monkeypatch.setattr(sweeper, "sweep", lambda redis, settings: sweeps.append(time.monotonic()))
    monkeypatch.setattr(
        "vot.outreach.dispatch.utcnow", lambda: AT_8
    )  # the reminder is due as the loop starts
    stop = threading.Event()
    loop = threading.Thread(
        target=sweeper.sweeper_loop,
        args=(reach.with_(redis_url=redis_url, analytics_every_s=0), stop, 0.2),
    )
    started = time.monotonic()
    loop.start()
    time.sleep(2.0)
    # The gateway hangs, and the sweeps went on every 0.2 s meanwhile.
    assert len([t for t in sweeps if t - started < 2.0]) >= 5
    assert gateway.received == [] and rows(engine)[0].status == "sending"
    stop.set()
    loop.join(timeout=10)


def cli_env(settings, gateway: SmsGateway | None = None) -> dict[str, str]:
    env = {
        "VOT_DATA_DIR": str(settings.data_dir),
        "VOT_DATABASE_URL": settings.database_url,
        "VOT_SECRET_KEY": "test-secret",
    }
    if gateway is not None:
        env["VOT_SMS_WEBHOOK_URL"] = gateway.url
    return env


def test_cli_sets_the_contact_and_sends_what_is_due(engine, settings, gateway) -> None:
    env = cli_env(settings, gateway)
    got = run_cli(
        "patient",
        "add",
        "P-1",
        "--clinic",
        "A",
        "--start",
        "2026-03-02",
        "--tz",
        "Asia/Shanghai",
        "--phone",
        "+86 138-1234-5678",
        "--remind-at",
        "08:00",
        "--language",
        "zh-CN",
        env=env,
    )
    assert got.returncode == 0, got.stderr
    assert "reminders at 08:00 by push and SMS" in got.stdout and PHONE not in got.stdout
    sent = run_cli("reminders", "send", "--now", "2026-03-10T08:01:00+08:00", env=env)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"sent": 1, "skipped": 0, "retrying": 0, "failed": 0}
    assert gateway.received[0].message["to"] == PHONE
    again = run_cli("reminders", "send", "--now", "2026-03-10T08:02:00+08:00", env=env)
    assert json.loads(again.stdout)["sent"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phone", "13812345678"], "starts with + and the country code"),
        (["--phone", "+86abc"], "starts with + and the country code"),
        (["--remind-at", "25:00"], "HH:MM on the 24-hour clock"),
        (["--remind-at", "8am"], "HH:MM on the 24-hour clock"),
        (["--language", "fr"], "the language is one of en, zh-CN"),
    ],
)
def test_cli_bad_contact_is_one_line_and_changes_nothing(settings, engine, args, message) -> None:
    env = cli_env(settings)
    got = run_cli("patient", "add", "P-9", "--clinic", "A", *args, env=env)
    assert got.returncode == 1 and got.stdout == ""
    assert got.stderr.count("\n") == 1 and got.stderr.startswith("vot: error: ")
    assert message in got.stderr
    with engine.connect() as conn:
        assert conn.execute(select(schema.patients)).all() == []


def test_cli_contact_changes_and_clears(settings, engine) -> None:
    env = cli_env(settings)
    assert run_cli("patient", "add", "P-1", "--clinic", "A", env=env).returncode == 0
    got = run_cli(
        "patient", "contact", "P-1", "--remind-at", "07:30", "--phone", "+447700900123", env=env
    )
    assert got.stdout.strip() == "patient P-1: reminders at 07:30 by push and SMS"
    bad = run_cli("patient", "contact", "P-1", "--remind-at", "7:3", env=env)
    assert bad.returncode == 1
    cleared = run_cli("patient", "contact", "P-1", "--remind-at", "", env=env)
    assert cleared.stdout.strip() == "patient P-1: no reminders"
    with engine.connect() as conn:
        row = conn.execute(select(schema.patients.c.phone, schema.patients.c.remind_at)).one()
    assert tuple(row) == ("+447700900123", None)


def test_no_sms_without_a_gateway_and_nothing_without_a_time(engine, reach, settings) -> None:
    enrol(engine, reach, "P-1")
    assert send_due(engine, settings, AT_8).as_json()["sent"] == 0  # no gateway set
    assert rows(engine) == []
    with engine.begin() as conn:
        contact.update(conn, 1, "test", remind_at=None)
    assert send_due(engine, reach, AT_8).as_json()["sent"] == 0


def test_push_only_from_a_machine_with_the_web_apps_key(
    engine, settings, push_service, tmp_path
) -> None:
    worker = settings.with_(data_dir=tmp_path / "worker", push_services=(push_service.origin,))
    enrol(engine, worker, "P-1", phone=None, push_to=push_service)
    assert not push.has_key(worker)
    assert send_due(engine, worker, AT_8).as_json()["sent"] == 0 and rows(engine) == []
    push.public_key(worker)  # the key copied to this machine (or made by its web app)
    assert send_due(engine, worker, AT_8).sent == 1
