"""The patient's page as a companion, in a real headless Chromium: it opens from its service
worker when the server cannot be reached, showing the calendar as last seen, and a video
recorded then is sent once the server is back; a worker never serves one patient's page for
another's link; the patient sets a reminder time and turns on reminders on the phone, and a
reminder the server sends (to a local push service that decrypts it) shows as a notification.
Screenshots at 360x740 in English and Chinese go to the artifacts folder."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from review_ui import create_app, i18n
from tests import outreach_servers, test_browser_patient
from tests.test_browser_patient import EN, PHONE, record, shows, watch_console
from vot import accounts, schema, tokens
from vot.outreach import reminders
from vot.outreach.dispatch import send_due
from vot.treatment import doses

ZH = i18n.messages("zh-Hans")
# The browser (fake front camera and all) of the patient page's tests.
playwright, browser = test_browser_patient.playwright, test_browser_patient.browser
push_service = outreach_servers.push_service
TZ = "Asia/Shanghai"


class Site:
    """The app on a fixed loopback port that the test can take away and bring back."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self._run()

    def _run(self) -> None:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False

    def up(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._run()


def enrol(engine, settings, code: str, start: date) -> str:
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        accounts.add_patient(conn, code, clinic, start, TZ)
        return tokens.link_token(conn, settings.secret_key, code)


@pytest.fixture
def reach(settings, push_service):
    from vot.outreach import push

    push.public_key(settings)  # as the web app makes it for the first page it serves
    return settings.with_(push_services=(push_service.origin,), vapid_subject="mailto:tb@x.org")


@pytest.fixture
def site(reach, engine) -> Iterator[Site]:
    running = Site(create_app(reach))
    yield running
    running.down()


def controlled(page) -> str:
    """Wait until the page's service worker controls it; the worker's scope."""
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
    return str(scope)


def day_states(page) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        ".calendar .day", "cells => cells.map(c => [c.dataset.date, c.dataset.state])"
    )


@pytest.mark.browser
def test_the_page_opens_offline_from_the_service_worker(
    browser, site, engine, reach, artifacts_dir
) -> None:
    today = datetime.now(ZoneInfo(TZ)).date()  # the calendar shows the patient's month
    token = enrol(engine, reach, "P-1", today - timedelta(days=5))
    with engine.begin() as conn:
        patient_id = accounts.get_patient(conn, "P-1").id
        doses.record_dose(conn, patient_id, today, "in_person", "nurse")
    ctx = browser.new_context(
        viewport=PHONE, device_scale_factor=2, locale="en-US", permissions=["camera"]
    )
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.base}/p/{token}")
    assert controlled(page) == f"{site.base}/p/{token}"
    page.reload()  # now through the worker, which keeps the page and its answers
    page.wait_for_selector(".calendar .day.taken")
    seen = day_states(page)
    assert ("taken" in dict(seen).values()) and page.locator("#offline-note").is_hidden()

    site.down()  # the clinic's server cannot be reached
    page.reload()
    page.wait_for_selector(".calendar .day.taken")
    assert day_states(page) == seen
    note = page.locator("#offline-note")
    note.wait_for(state="visible", timeout=10_000)
    assert note.inner_text().startswith("No network. This is your page as it was at ")
    page.screenshot(path=str(artifacts_dir / "patient_offline_calendar_en.png"), full_page=True)

    # A dose recorded with the page opened offline waits on the phone, and goes once the
    # server is back.
    record(page, 3)
    shows(page, "#send-text", EN["send.retrying"], 15_000)
    with engine.connect() as conn:
        assert conn.execute(select(schema.submissions)).all() == []
    site.up()
    shows(page, "#send-text", EN["send.received"], 60_000)
    note.wait_for(state="hidden", timeout=15_000)
    with engine.connect() as conn:
        [row] = conn.execute(select(schema.submissions)).all()
    assert row.patient_id == patient_id and row.original_filename.endswith(".webm")
    assert errors == []
    ctx.close()


@pytest.mark.browser
def test_a_worker_never_serves_one_patients_page_for_another_link(
    browser, site, engine, reach
) -> None:
    start = datetime.now(UTC).date() - timedelta(days=2)
    mine, theirs = enrol(engine, reach, "P-1", start), enrol(engine, reach, "P-2", start)
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    page.goto(f"{site.base}/p/{mine}")
    controlled(page)
    site.down()
    with pytest.raises(Exception, match="ERR_CONNECTION_REFUSED|ERR_FAILED"):
        page.goto(f"{site.base}/p/{theirs}")
    assert mine not in settled_content(page)  # the browser's own error page
    # Nor another link's answers: the worker leaves a request with another token alone.
    got = page.evaluate(
        """(token) => fetch('/api/v1/me/calendar', {headers: {Authorization: 'Bearer ' + token}})
            .then(() => 'answered', () => 'no network')""",
        theirs,
    )
    assert got == "no network"
    ctx.close()


def settled_content(page) -> str:
    """The page's HTML once a failed navigation has finished turning into the error page."""
    from playwright.sync_api import Error

    for _ in range(20):
        try:
            return str(page.content())
        except Error:  # still navigating
            page.wait_for_timeout(250)
    raise AssertionError("the page never settled")


def subscription_stub(subscription: dict) -> str:
    """Chromium here has no push service to talk to (no network): the page's subscribe() gets
    the local push service's subscription instead, keys and all."""
    stub = """(() => { const sub = SUBSCRIPTION;
      const fake = { endpoint: sub.endpoint, toJSON: () => sub };
      let made = null;
      if (window.PushManager) {
        PushManager.prototype.subscribe = async function () { made = fake; return fake; };
        PushManager.prototype.getSubscription = async function () { return made; };
      } })();"""
    return stub.replace("SUBSCRIPTION", json.dumps(subscription))


def deliver_push(page, scope: str, data: str) -> None:
    """Hand a push message to the page's service worker, as the browser does when its push
    service delivers one (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    found: dict[str, str] = {}
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: found.update(
            {r["scopeURL"]: r["registrationId"] for r in event["registrations"]}
        ),
    )
    cdp.send("ServiceWorker.enable")
    page.wait_for_timeout(500)
    origin = scope.split("/p/")[0]
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": found[scope], "data": data},
    )


def notifications(page) -> list[list[str]]:
    return page.evaluate(
        """navigator.serviceWorker.ready.then((r) => r.getNotifications())
            .then((all) => all.map((n) => [n.title, n.body, n.tag]))"""
    )


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_reminder_time_and_a_push_reminder_on_the_phone(
    browser, site, engine, reach, push_service, artifacts_dir, lang
) -> None:
    today = datetime.now(ZoneInfo(TZ)).date()
    token = enrol(engine, reach, "P-1", today - timedelta(days=3))
    t = EN if lang == "en" else ZH
    ctx = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        locale="zh-CN" if lang != "en" else "en-US",
        permissions=["camera", "notifications"],
    )
    ctx.add_init_script(subscription_stub(push_service.subscription()))
    page = ctx.new_page()
    errors = watch_console(page)
    page.goto(f"{site.base}/p/{token}?lang={lang}")
    scope = controlled(page)
    assert page.locator("#remind-state").inner_text() == t["remind.none"]
    page.fill("#remind-at", "08:00")
    page.click("#remind-save")
    shows(page, "#remind-state", t["remind.saved"].format(time="08:00"), 10_000)
    shows(page, "#push-state", t["remind.no_channel"], 5_000)  # nothing reaches them yet
    page.click("#push-on")
    shows(page, "#push-state", t["remind.push_enabled"], 10_000)
    assert page.locator("#push-on").is_hidden()
    with engine.connect() as conn:
        patient = conn.execute(select(schema.patients)).one()
        [sub] = conn.execute(select(schema.push_subscriptions)).all()
    assert (patient.remind_at, patient.language) == ("08:00", "en" if lang == "en" else "zh-CN")
    assert sub.endpoint == push_service.subscription()["endpoint"]
    card = page.locator("#reminders-card")
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / f"patient_reminders_{lang}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    at_eight = datetime.combine(today, time(8, 1), ZoneInfo(TZ)).astimezone(UTC)
    assert send_due(engine, reach, at_eight).sent == 1
    [got] = push_service.received  # decrypted with the subscription's keys
    expected = reminders.texts()["en" if lang == "en" else "zh-CN"]
    assert (got.message["title"], got.message["body"]) == (expected["title"], expected["first"])
    deliver_push(page, scope, json.dumps(got.message, ensure_ascii=False))
    shown: list[list[str]] = []
    for _ in range(40):  # the worker shows it in its own time
        shown = notifications(page)
        if shown:
            break
        page.wait_for_timeout(250)
    assert shown == [[got.message["title"], got.message["body"], got.message["tag"]]]
    assert errors == []
    # And with no network, the page says so in its language.
    site.down()
    page.reload()
    note = page.locator("#offline-note")
    note.wait_for(state="visible", timeout=10_000)
    assert note.inner_text().startswith(t["offline.note"].split("{")[0])
    # The reminder settings as last seen, too.
    shows(page, "#remind-state", t["remind.saved"].format(time="08:00"), 10_000)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / f"patient_offline_{lang}.png"))
    ctx.close()


@pytest.mark.browser
def test_bad_reminder_input_is_refused_on_the_page(
    browser,
    site,
    engine,
    reach,
) -> None:
    token = enrol(engine, reach, "P-1", date.today())
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{site.base}/p/{token}")
    got = page.evaluate(
        """(token) => fetch('/api/v1/me/reminders', {method: 'PUT',
             headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
             body: JSON.stringify({remind_at: '25:61'})})
           .then(async (r) => [r.status, await r.json()])""",
        token,
    )
    assert got[0] == 400 and "HH:MM" in got[1]["error"]
    page.close()


@pytest.mark.browser
def test_the_supervisor_sees_the_reminders_on_the_calendar(
    browser, site, engine, reach, push_service, artifacts_dir
) -> None:
    from vot.outreach import contact, push

    today = datetime.now(ZoneInfo(TZ)).date()
    enrol(engine, reach, "P-1", today - timedelta(days=3))
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        accounts.ensure_user(conn, "sup", "sup-password-123", "supervisor", clinic)
        pid = accounts.get_patient(conn, "P-1").id
        contact.update(conn, pid, "sup", phone="+8613812345678", remind_at="08:00")
        push.subscribe(conn, reach, pid, push_service.subscription())
    for days_ago in (2, 1, 0):
        day = today - timedelta(days=days_ago)
        at = datetime.combine(day, time(8, 1), ZoneInfo(TZ)).astimezone(UTC)
        send_due(engine, reach, at)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site.base}/patients/{pid}")
    page.fill("#username", "sup")
    page.fill("#password", "sup-password-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/patients/{pid}")
    rows = page.eval_on_selector_all(
        "#reminders tr[data-date]", "rows => rows.map(r => [r.dataset.date, r.dataset.status])"
    )
    assert rows == [[str(today - timedelta(days=d)), "sent"] for d in (0, 1, 2)]
    assert page.input_value("#contact-form input[name=phone]") == "+8613812345678"
    page.locator("#reminders").screenshot(path=str(artifacts_dir / "supervisor_reminders.png"))
    page.close()
