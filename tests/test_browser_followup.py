"""The follow-up list in a real headless Chromium: a supervisor records calls by keyboard, and
records a dose watched in person from a patient's calendar; then the database is checked and
screenshots kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from serving import served
from sqlalchemy import select
from test_browser_review import ARGS, CHROMIUM, VIEWPORT, browser, wait_js  # noqa: F401
from test_review import PASSWORD

from review_ui import create_app
from tests.test_ledger import add_video
from vot import accounts, schema
from vot.config import Settings
from vot.treatment.course import patient_today

pytestmark = pytest.mark.browser


@pytest.fixture
def clinic(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A clinic whose patients missed doses in different ways."""
    today = patient_today("UTC")
    found = {}
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Follow-up Clinic")
        accounts.ensure_user(conn, "nurse", PASSWORD, "supervisor", clinic)
        for code, taken in (
            ("F-GONE", range(6, 21)),  # 5 doses missed in a row: escalated
            ("F-YESTERDAY", [d for d in range(0, 21) if d != 1]),
            ("F-FINE", range(0, 21)),
        ):
            pid = accounts.add_patient(conn, code, clinic, today - timedelta(days=20))[0].id
            for ago in taken:
                add_video(conn, pid, today - timedelta(days=ago), schema.ACCEPTED)
            found[code] = pid
    return found


@pytest.fixture
def server(settings: Settings, clinic: dict[str, int]) -> Iterator[str]:
    with served(create_app(settings)) as base:
        yield base


def test_supervisor_clears_the_follow_up_list_by_keyboard(
    browser,  # noqa: F811
    server: str,
    clinic: dict[str, int],
    engine,  # type: ignore[no-untyped-def]
    artifacts_dir: Path,
) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/login")
    page.fill("#username", "nurse")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/review")
    assert page.inner_text("#count-escalated") == "1"
    page.click("nav >> text=Follow-up")
    page.wait_for_url(f"{server}/followup")
    order = page.eval_on_selector_all(
        "tr[data-patient-id]", "rows => rows.map(r => +r.dataset.patientId)"
    )
    assert order == [clinic["F-GONE"], clinic["F-YESTERDAY"]]  # the fine patient is not listed
    assert page.is_visible("tr.escalated .escalated-mark")
    page.screenshot(path=str(artifacts_dir / "followup_en.png"), full_page=True)
    page.keyboard.press("2")  # no answer, for the selected (first) patient; moves on
    wait_js(page, "document.querySelector('tr[data-patient-id]').dataset.recorded === 'no_answer'")
    page.keyboard.press("k")  # back to the first
    page.keyboard.press("n")
    page.keyboard.type("Sister says he is at work; call at 7")
    page.keyboard.press("Enter")
    wait_js(page, "document.querySelector('tr[data-patient-id]').dataset.recorded === 'note'")
    page.keyboard.press("j")
    page.keyboard.press("1")  # the second patient is reached
    wait_js(page, "document.querySelectorAll('tr.reached').length === 1")
    assert errors == []
    calls = schema.followup_calls
    with engine.connect() as conn:
        got = conn.execute(
            select(calls.c.patient_id, calls.c.outcome, calls.c.note).order_by(calls.c.id)
        ).all()
    assert [tuple(r) for r in got] == [
        (clinic["F-GONE"], "no_answer", None),
        (clinic["F-GONE"], "note", "Sister says he is at work; call at 7"),
        (clinic["F-YESTERDAY"], "reached", None),
    ]
    page.reload()  # a reached patient goes after the others; what was tried stays in view
    order = page.eval_on_selector_all(
        "tr[data-patient-id]", "rows => rows.map(r => +r.dataset.patientId)"
    )
    assert order == [clinic["F-GONE"], clinic["F-YESTERDAY"]]
    assert "No answer" in page.inner_text(f"tr[data-patient-id='{clinic['F-GONE']}'] ol.calls")

    # From the calendar: yesterday's missed dose was watched in person at the clinic.
    page.keyboard.press("o")
    page.wait_for_url(f"{server}/patients/{clinic['F-GONE']}")
    yesterday = (patient_today("UTC") - timedelta(days=1)).isoformat()
    page.click(f"td[data-date='{yesterday}'] a.date")
    page.click("#dose-form >> text=Watched in person")
    page.wait_for_selector(
        f"td[data-date='{yesterday}'][data-state='taken'][data-kind='in_person']"
    )
    page.screenshot(path=str(artifacts_dir / "patient_calendar_dose_en.png"), full_page=True)
    with engine.connect() as conn:
        doses = conn.execute(
            select(schema.observed_doses.c.kind, schema.observed_doses.c.recorded_by)
        ).all()
    assert [tuple(d) for d in doses] == [("in_person", "nurse")]
    page.close()
