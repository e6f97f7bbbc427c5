"""A supervisor's session in a real headless Chromium: sign in, clear items by keyboard, undo,
bulk-accept; then the database and the audit log are checked, and screenshots kept."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import clip
from serving import served
from sqlalchemy import func, select
from test_review import PASSWORD, add_sub, make_world

from review_ui import create_app
from vot import accounts, schema
from vot.config import Settings
from vot.media import probe
from vot.storage import open_storage
from workers.transcode.encode import transcode

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1366, "height": 768}
# asl_eat.mkv (1.57 s): fingertips go to the mouth twice, the stand-in for a pill going in.
EVENTS = (
    {"type": "hand_to_mouth", "start_s": 0.2, "end_s": 0.6, "score": 0.7},
    {"type": "hand_to_mouth", "start_s": 0.9, "end_s": 1.3, "score": 0.5},
)
KEY_MOMENT = 0.45


def wait_js(page, expression: str, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``expression`` until true (wait_for_function would need 'unsafe-eval' in the CSP)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
        time.sleep(0.05)


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright; skipped where it is absent, except on CI."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing; install Debian's chromium package"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def seeded(settings: Settings, engine, tmp_path: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The demo supervisor's clinic: eight waiting videos, one with no face, two auto-accepted."""
    world = make_world(engine)
    src = clip("asl_eat.mkv")
    transcode(src, tmp_path / "review.mp4", tmp_path / "poster.jpg", probe(src))
    storage = open_storage(settings)
    confidences = (0.95, 0.9, 0.85, 0.8, 0.75, 0.6, 0.45, 0.3)
    with engine.begin() as conn:
        accounts.ensure_user(conn, "demo-supervisor", PASSWORD, "supervisor", world.sup_a.clinic_id)
        waiting = [
            add_sub(
                conn,
                world.patient_a,
                world.today,
                c,
                events=EVENTS,
                key_moment=KEY_MOMENT,
                duration=1.57,
            )
            for c in confidences
        ]
        faceless = add_sub(
            conn,
            world.patient_a,
            world.today,
            0.7,
            reasons=("no_face",),
            events=EVENTS,
            key_moment=KEY_MOMENT,
            duration=1.57,
        )
        autos = [
            add_sub(conn, world.patient_a, world.today, 0.97, status=schema.AUTO_ACCEPTED)
            for _ in range(2)
        ]
        add_sub(conn, world.patient_b, world.today, 0.99)  # another clinic: never shown
    for sub in (*waiting, faceless, *autos):
        storage.put_file(f"review/{sub}.mp4", tmp_path / "review.mp4", "video/mp4")
        storage.put_file(f"poster/{sub}.jpg", tmp_path / "poster.jpg", "image/jpeg")
    return {"waiting": waiting, "faceless": faceless}


@pytest.fixture
def server(settings: Settings, seeded: dict[str, object]) -> Iterator[str]:
    with served(create_app(settings)) as base:
        yield base


def test_supervisor_clears_the_queue_by_keyboard(
    browser,
    server: str,
    seeded,
    engine,  # type: ignore[no-untyped-def]
    artifacts_dir: Path,
) -> None:
    waiting: list[int] = seeded["waiting"]
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{server}/review")
    assert "/login" in page.url
    page.fill("#username", "demo-supervisor")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/review")
    shown = page.eval_on_selector_all(
        "tr[data-submission-id]",
        "rows => rows.map(r => [+r.dataset.submissionId, +r.dataset.confidence])",
    )
    assert [i for i, _ in shown][:5] == waiting[:5]
    assert [c for _, c in shown] == sorted((c for _, c in shown), reverse=True)
    page.screenshot(path=str(artifacts_dir / "review_queue.png"))

    page.keyboard.press("Enter")  # the first row has the focus
    page.wait_for_url(f"{server}/review/{waiting[0]}")
    wait_js(page, "document.getElementById('video').readyState >= 2")
    # The player starts at the key moment (and may have played on from there).
    assert page.evaluate("document.getElementById('video').currentTime") >= KEY_MOMENT - 0.05
    page.keyboard.press("s")
    assert page.evaluate("document.getElementById('video').playbackRate") == 1.5
    wait_js(
        page,
        "[...document.querySelectorAll('.stills img')]"
        ".every(i => i.complete && i.naturalWidth > 0)",
    )
    assert page.eval_on_selector_all(".stills img", "imgs => imgs.length") == 3
    page.evaluate(
        f"(v => {{ v.pause(); v.currentTime = {KEY_MOMENT}; }})(document.getElementById('video'))"
    )
    page.screenshot(path=str(artifacts_dir / "review_item.png"))

    page.keyboard.press("a")
    page.wait_for_url(f"{server}/review/{waiting[1]}")
    page.keyboard.press("r")
    page.keyboard.press("1")  # "pill not seen"
    page.wait_for_url(f"{server}/review/{waiting[2]}")
    page.keyboard.press("n")
    page.keyboard.type("asked to film again in daylight")
    page.keyboard.press("Escape")
    page.keyboard.press("u")
    page.wait_for_url(f"{server}/review/{waiting[3]}")
    page.keyboard.press("a")
    page.wait_for_url(f"{server}/review/{waiting[4]}")
    page.keyboard.press("a")
    page.wait_for_url(f"{server}/review/{seeded['faceless']}")  # 0.7 ranks between 0.75 and 0.6
    page.keyboard.press("z")  # takes back the last accept
    page.wait_for_url(f"{server}/review/{waiting[4]}")
    assert "is waiting for a decision again" in page.inner_text(".flashes")

    page.click("text=Queue")
    page.fill("#bulk-min", "0.5")
    page.click("text=See how many")
    assert page.inner_text("#bulk-count") == "2"  # 0.75 and 0.6; the faceless 0.7 stays
    page.click("#bulk-confirm")
    page.wait_for_url(f"{server}/review")
    assert page.inner_text("#count-waiting") == "3"
    page.click("tr[data-submission-id] td:nth-child(2) a")  # the patient's calendar
    today = page.locator("td.today")
    assert today.get_attribute("data-state") == "taken"  # accepted today, others still wait
    page.screenshot(path=str(artifacts_dir / "review_calendar.png"))
    assert errors == []

    s, rv, log = schema.submissions, schema.reviews, schema.audit_log
    with engine.connect() as conn:
        status = {r.id: r.status for r in conn.execute(select(s.c.id, s.c.status))}
        assert [status[i] for i in waiting] == [
            schema.ACCEPTED,
            schema.REJECTED,
            schema.UNCLEAR,
            schema.ACCEPTED,
            schema.ACCEPTED,
            schema.ACCEPTED,
            schema.REVIEW,
            schema.REVIEW,
        ]
        assert status[seeded["faceless"]] == schema.REVIEW
        rows = conn.execute(
            select(
                rv.c.submission_id, rv.c.verdict, rv.c.reason, rv.c.note, rv.c.undone_at
            ).order_by(rv.c.id)
        ).all()
        assert [(r.submission_id, r.verdict) for r in rows[:5]] == list(
            zip(waiting[:5], ["accept", "reject", "unclear", "accept", "accept"], strict=True)
        )
        assert rows[1].reason == "pill not seen"
        assert rows[2].note == "asked to film again in daylight"
        assert [r.undone_at is not None for r in rows] == [False] * 4 + [True, False, False]
        actions = dict(
            conn.execute(
                select(log.c.action, func.count())
                .where(log.c.actor == "demo-supervisor")
                .group_by(log.c.action)
            ).all()
        )
    assert actions["review.accept"] == 3 + 2 and actions["review.reject"] == 1
    assert actions["review.unclear"] == 1 and actions["review.undo"] == 1
    assert actions["review.bulk_accept"] == 1 and actions["auth.login"] == 1
    assert actions["video.view"] >= 1 and actions["video.still"] >= 2


def test_supervisor_erases_a_patients_videos_and_issues_a_new_link(
    browser,
    server: str,
    seeded,
    engine,  # type: ignore[no-untyped-def]
    settings: Settings,
    artifacts_dir: Path,
) -> None:
    from vot import tokens

    waiting: list[int] = seeded["waiting"]
    storage = open_storage(settings)
    with engine.begin() as conn:
        patient_id = conn.execute(
            select(schema.submissions.c.patient_id).where(schema.submissions.c.id == waiting[0])
        ).scalar_one()
        code = conn.execute(
            select(schema.patients.c.code).where(schema.patients.c.id == patient_id)
        ).scalar_one()
        old_link = tokens.link_token(conn, settings.secret_key, code)
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/login")
    page.fill("#username", "demo-supervisor")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/review")

    page.goto(f"{server}/patients/{patient_id}")
    page.click("#erase-link")
    page.wait_for_url(f"{server}/patients/{patient_id}/erase")
    assert int(page.inner_text("#erase-stored")) == len(waiting) + 3  # 8 + faceless + 2 autos
    page.fill("#reason", "patient asked at the clinic, signed form")
    page.fill("#confirm_code", code + "x")
    page.click("#erase-confirm")
    assert "type the patient" in page.inner_text("#erase-error")  # a typo erases nothing
    assert storage.exists(f"review/{waiting[0]}.mp4")
    assert len(errors) == 1 and "400" in errors[0]  # the refused form answers 400, as it should
    errors.clear()
    page.fill("#confirm_code", code)
    page.click("#erase-confirm")
    page.wait_for_url(f"{server}/patients/{patient_id}")
    assert f"Erased the videos of {code}" in page.inner_text(".flashes")
    assert "upload link was revoked" in page.inner_text(".flashes")
    page.screenshot(path=str(artifacts_dir / "patient_erased.png"))

    page.goto(f"{server}/review/{waiting[0]}")
    assert "erased at the patient's request" in page.inner_text("main")
    assert page.locator("video").count() == 0

    page.goto(f"{server}/patients/{patient_id}/link")
    assert page.locator("#link-revoked").is_visible()
    page.click("#new-link")
    page.wait_for_url(f"{server}/patients/{patient_id}/link")
    assert page.locator(".qr svg").count() == 1
    url = page.inner_text(".url code")
    page.screenshot(path=str(artifacts_dir / "patient_new_link.png"))
    assert errors == []

    with engine.connect() as conn:
        assert tokens.resolve(conn, url.rsplit("/", 1)[1]).code == code
        with pytest.raises(tokens.RevokedToken):
            tokens.resolve(conn, old_link)
    assert not any(storage.exists(f"review/{sub}.mp4") for sub in waiting)
