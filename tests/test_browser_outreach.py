"""Side effects and messages in a real headless Chromium: a patient on a 360x740 phone reports a
serious side effect and it is at the top of the supervisor's follow-up list; a message thread
goes both ways; a side effect reported offline is sent when the network comes back. Screenshots
in English and Simplified Chinese are kept in the artifacts folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from serving import served
from sqlalchemy import select
from test_browser_patient import (  # noqa: F401
    PHONE,
    camera_file,
    launch,
    playwright,  # noqa: F401  (the module's Playwright)
    watch_console,
)
from test_review import PASSWORD

from review_ui import create_app, i18n
from vot import accounts, schema, tokens
from vot.treatment.course import patient_today

pytestmark = pytest.mark.browser
EN, ZH = i18n.messages("en"), i18n.messages("zh-Hans")
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):  # noqa: F811
    chromium = launch(playwright, camera_file(tmp_path_factory.mktemp("camera"), "face.y4m"))
    yield chromium
    chromium.close()


@pytest.fixture
def site(settings, engine) -> Iterator[dict[str, object]]:
    today = patient_today("Asia/Shanghai")
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Side Effect Clinic")
        accounts.ensure_user(conn, "nurse-w", PASSWORD, "supervisor", clinic)
        found = {}
        for code in ("S-1", "S-2"):
            found[code] = accounts.add_patient(
                conn, code, clinic, today - timedelta(days=10), "Asia/Shanghai"
            )[0].id
        link = tokens.link_token(conn, settings.secret_key, "S-2")
    with served(create_app(settings)) as base:
        yield {"base": base, "page": f"{base}/p/{link}", **found}


def sign_in(page, base: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("#username", "nurse-w")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/review")


def test_a_serious_side_effect_reaches_the_top_of_the_follow_up_list(
    browser, site, engine, artifacts_dir: Path
) -> None:
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="en-US")
    page = phone.new_page()
    errors = watch_console(page)
    page.goto(site["page"])
    page.check("input[name=symptom][value=jaundice]")
    page.check("input[name=symptom][value=nausea_vomiting]")
    page.check("input[name=severity][value=moderate]")
    page.fill("#se-note", "My eyes look yellow since yesterday")
    page.locator("#side-effects-card").screenshot(path=str(artifacts_dir / "side_effects_en.png"))
    page.click("#se-send")
    page.wait_for_selector(f"#se-status:text('{EN['se.sent_urgent']}')")
    assert errors == []
    with engine.connect() as conn:
        row = conn.execute(select(schema.side_effects)).one()
    assert (row.patient_id, row.urgent, row.severity) == (site["S-2"], True, "moderate")

    desk = browser.new_context(viewport=DESKTOP)
    staff = desk.new_page()
    sign_in(staff, site["base"])
    staff.goto(f"{site['base']}/followup")
    first = staff.locator("tr[data-patient-id]").first
    assert first.get_attribute("data-patient-id") == str(site["S-2"])
    assert "reported a serious side effect" in first.inner_text()
    staff.screenshot(path=str(artifacts_dir / "followup_side_effect_en.png"), full_page=True)
    staff.goto(f"{site['base']}/patients/{site['S-2']}")
    assert "Yellow eyes or skin" in staff.inner_text("#urgent-side-effects")
    staff.click("#acknowledge")
    staff.wait_for_selector("#urgent-side-effects", state="detached")
    desk.close()
    phone.close()


def test_a_message_thread_goes_both_ways(browser, site, engine, artifacts_dir: Path) -> None:
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = phone.new_page()
    errors = watch_console(page)
    page.goto(site["page"])
    page.click("#messages-card summary")
    page.fill("#message-text", "吃药后有点头晕 <3")
    page.click("#message-form button[type=submit]")
    page.wait_for_selector(f"#msg-status:text('{ZH['msg.sent']}')")
    page.wait_for_selector("#thread li.from-patient")

    desk = browser.new_context(viewport=DESKTOP)
    staff = desk.new_page()
    sign_in(staff, site["base"])
    assert staff.inner_text("#unread-total") == "1"
    staff.goto(f"{site['base']}/patients/{site['S-2']}#messages")
    assert "吃药后有点头晕 <3" in staff.inner_text("#messages .thread")  # as text, not markup
    staff.fill("#message-form textarea", "饭后吃药，我们今天会给您打电话。")
    staff.click("#message-form button[type=submit]")
    staff.wait_for_selector("#messages li.from-staff")
    desk.close()

    page.reload()
    page.wait_for_selector(f"#msg-unread:text('{ZH['msg.new'].format(n=1)}')")
    page.click("#messages-card summary")
    page.wait_for_selector("#thread li.from-staff")
    assert "饭后吃药" in page.inner_text("#thread li.from-staff")
    page.screenshot(path=str(artifacts_dir / "messages_zh-Hans.png"), full_page=True)
    page.locator("#side-effects-card").screenshot(
        path=str(artifacts_dir / "side_effects_zh-Hans.png")
    )
    assert errors == []
    with engine.connect() as conn:
        read = conn.execute(select(schema.messages.c.sender, schema.messages.c.read_at)).all()
    assert all(at is not None for _sender, at in read)  # both sides have read the other's
    phone.close()


def test_a_side_effect_reported_offline_is_sent_when_back_online(browser, site, engine) -> None:
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="en-US")
    page = phone.new_page()
    page.goto(site["page"])
    phone.set_offline(True)
    page.check("input[name=symptom][value=joint_pain]")
    page.click("#se-send")
    page.wait_for_selector(f"#se-status:text('{EN['se.queued']}')")
    with engine.connect() as conn:
        assert conn.execute(select(schema.side_effects)).all() == []
    phone.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_selector(f"#se-status:text('{EN['se.sent']}')")
    with engine.connect() as conn:
        [row] = conn.execute(
            select(schema.side_effects.c.symptoms, schema.side_effects.c.urgent)
        ).all()
    assert (list(row.symptoms), row.urgent) == (["joint_pain"], False)
    phone.close()
