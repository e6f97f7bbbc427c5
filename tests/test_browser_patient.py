"""The patient's page in a real headless Chromium whose fake front camera plays a made-up clip:
record, send, survive a cut connection and a closed page, work offline, and look right on a
360x740 phone in English and Simplified Chinese (screenshots in the artifacts folder)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from review_ui import create_app, i18n
from tests.conftest import big_video, video
from vot import accounts, schema, tokens
from vot.db import as_utc
from vot.intake import expiry as upload_expiry
from vot.media import ffmpeg_exe

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 360, "height": 740}
EN = i18n.messages("en")


@pytest.fixture(scope="module")
def playwright() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; browser tests must run in CI")
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def camera_file(folder: Path, name: str, dark: bool = False) -> Path:
    """A .y4m for Chromium's fake camera, made from a test-pattern video (optionally dimmed)."""
    out = folder / name
    if not out.exists():
        filters = "scale=640:480,fps=15" + (",eq=brightness=-0.6" if dark else "")
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(big_video()),
                "-t",
                "6",
                "-vf",
                filters,
                "-pix_fmt",
                "yuv420p",
                str(out),
            ],
            check=True,
            timeout=120,
        )
    return out


def launch(playwright, y4m: Path, *extra: str):
    """Chromium whose fake front camera plays ``y4m`` (``extra``: more command-line flags)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    chromium = launch(playwright, camera_file(tmp_path_factory.mktemp("camera"), "face.y4m"))
    yield chromium
    chromium.close()


@pytest.fixture
def site(settings, engine) -> Iterator[tuple[str, str]]:
    """(base URL, the patient's page) of the app served on 127.0.0.1."""
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        accounts.add_patient(conn, "P-1", clinic, date.today().replace(day=1), "Asia/Shanghai")
        token = tokens.link_token(conn, settings.secret_key, "P-1")
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    yield base, f"{base}/p/{token}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(
        viewport=PHONE, device_scale_factor=2, locale="en-US", permissions=["camera"]
    )
    yield ctx
    ctx.close()


def watch_console(page) -> list[str]:
    """Errors the page logs (a CSP violation or a script error shows up here)."""
    errors: list[str] = []

    def console(message) -> None:
        # The browser asks for /favicon.ico by itself; the site has none.
        if message.type == "error" and "favicon" not in message.location.get("url", ""):
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def record(page, seconds: float, during: Callable[[object], None] | None = None) -> datetime:
    page.click("#open-camera")
    shows(page, "#hint", EN["hint.ready"], 15_000)
    started = datetime.now(UTC)
    page.click("#rec-start")
    page.wait_for_timeout(int(seconds * 1000))
    if during:
        during(page)
    page.click("#rec-stop")
    return started


def shows(page, selector: str, text: str, timeout_ms: int) -> None:
    """Wait until ``selector`` shows exactly ``text`` (the page updates as the upload goes)."""
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_text(text, timeout=timeout_ms)


def rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(schema.submissions)).all()


@pytest.mark.browser
def test_record_send_and_see_received(context, site, engine, artifacts_dir) -> None:
    page = context.new_page()
    errors = watch_console(page)
    page.goto(site[1])
    assert page.locator("#today-text").inner_text() == EN["today.none"]

    def while_recording(page) -> None:
        page.screenshot(path=str(artifacts_dir / "patient_recording_en.png"))
        # The guide has moved on to the second step; the timer counts.
        assert page.locator("#steps li.now").get_attribute("data-step") == "pill"
        assert page.locator("#timer").inner_text().startswith("Recording: ")

    record(page, 6, while_recording)
    shows(page, "#send-text", EN["send.received"], 30_000)
    shows(page, "#today-text", EN["today.received"], 10_000)
    [row] = rows(engine)
    assert row.status == schema.RECEIVED and row.original_filename.startswith("dose-")
    assert row.original_filename.endswith(".webm") and 4.5 < row.duration_s < 10
    assert page.locator("#history li .state").first.inner_text() == EN["status.received"]
    assert page.locator(f".calendar .day.pending[data-date='{row.dose_date}']").count() == 1
    page.screenshot(path=str(artifacts_dir / "patient_received_en.png"), full_page=True)
    assert errors == []


@pytest.mark.browser
def test_cut_connection_and_closed_page_resume_where_they_stopped(
    context, site, engine, settings
) -> None:
    offsets: list[int] = []
    cut = {"after": 3}

    def network(route) -> None:
        if route.request.method == "PATCH":
            if len(offsets) >= cut["after"]:
                return route.abort("internetdisconnected")
            offsets.append(int(route.request.headers["upload-offset"]))
        return route.continue_()

    context.route("**/api/v1/uploads/**", network)
    page = context.new_page()
    page.goto(site[1])
    clip_path = big_video()  # 2.5 MB: ten pieces of 256 KiB
    page.set_input_files("#file", str(clip_path))
    shows(page, "#send-text", EN["send.retrying"], 20_000)
    with engine.connect() as conn:
        [received] = conn.execute(select(schema.uploads.c.offset_bytes)).scalars().all()
    assert received == 3 * 256 * 1024 and offsets == [0, 262144, 524288]
    page.close()  # the patient gives up and closes the page
    cut["after"] = 10**6
    again = context.new_page()  # later, with signal, they open their link again
    again.goto(site[1])
    shows(again, "#send-text", EN["send.received"], 30_000)
    assert offsets[3] == 3 * 256 * 1024 and offsets.count(0) == 1  # nothing was sent twice
    [row] = rows(engine)
    assert row.size_bytes == clip_path.stat().st_size
    assert list((settings.data_dir / "uploads").iterdir()) == []
    assert upload_expiry.expire_uploads(engine, settings) == 0


@pytest.mark.browser
def test_a_video_recorded_offline_waits_and_keeps_its_time(context, site, engine) -> None:
    page = context.new_page()
    page.goto(site[1])
    context.set_offline(True)
    started = record(page, 3)
    shows(page, "#send-text", EN["send.offline"], 10_000)
    time.sleep(3)
    assert rows(engine) == []
    back_online = datetime.now(UTC)
    context.set_offline(False)
    shows(page, "#send-text", EN["send.received"], 30_000)
    [row] = rows(engine)
    recorded = as_utc(row.recorded_at)
    assert abs((recorded - started).total_seconds()) < 3 and recorded < back_online


@pytest.mark.browser
def test_a_file_that_is_not_a_video_gets_a_kind_message(
    context, site, tmp_path, artifacts_dir
) -> None:
    fake = tmp_path / "dose.mp4"
    fake.write_bytes(b"not a video at all\n" * 500)
    page = context.new_page()
    page.goto(site[1])
    page.set_input_files("#file", str(fake))
    page.wait_for_selector("#refused:visible", timeout=20_000)
    assert page.locator("#refused-text").inner_text() == EN["refused.body"]
    assert page.locator("#again").is_visible()
    page.screenshot(path=str(artifacts_dir / "patient_refused_en.png"))
    page.click("#again")  # straight back to the camera
    page.wait_for_selector("#recorder:visible", timeout=10_000)


@pytest.mark.browser
def test_phone_screens_in_english_and_chinese(browser, site, engine, artifacts_dir) -> None:
    ctx = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    page = ctx.new_page()
    errors = watch_console(page)
    page.goto(site[1])
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("#open-camera").inner_text() == "录制服药视频"
    page.set_input_files("#file", str(video()))
    page.wait_for_selector("#send-text:text('已收到！谢谢您。')", timeout=30_000)
    page.wait_for_selector(".calendar .day.pending", timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "patient_home_zh-Hans.png"), full_page=True)
    page.click("#open-camera")
    page.wait_for_selector("#hint:text('很好。准备好后请按红色按钮。')", timeout=15_000)
    page.screenshot(path=str(artifacts_dir / "patient_camera_zh-Hans.png"))
    page.click("#rec-cancel")
    page.click("a[hreflang='en']")  # the switch is kept in a cookie
    page.goto(site[1])
    assert page.locator("#open-camera").inner_text() == EN["action.record"]
    page.screenshot(path=str(artifacts_dir / "patient_home_en.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing overflows sideways on a small phone
    assert errors == []
    ctx.close()


@pytest.mark.browser
def test_too_dark_hint(playwright, site, tmp_path) -> None:
    dark = launch(playwright, camera_file(tmp_path, "dark.y4m", dark=True))
    page = dark.new_page(viewport=PHONE)
    page.goto(site[1])
    page.click("#open-camera")
    shows(page, "#hint.bad", EN["hint.dark"], 15_000)
    assert int(page.locator("#patient").get_attribute("data-luma")) < 40
    dark.close()


@pytest.mark.browser
def test_a_revoked_link_says_so_kindly(browser, site, engine) -> None:
    with engine.begin() as conn:
        tokens.revoke(conn, "P-1")
    page = browser.new_page(viewport=PHONE)
    response = page.goto(site[1])
    assert response.status == 403
    assert page.locator("#gone").inner_text().startswith(EN["link.gone.body"])
    page.close()


@pytest.mark.browser
def test_without_in_page_recording_the_camera_app_is_offered(browser, site) -> None:
    # Plain HTTP on a clinic's LAN address is not a secure context: no getUserMedia there.
    ctx = browser.new_context(viewport=PHONE)
    ctx.add_init_script("Object.defineProperty(navigator, 'mediaDevices', {value: undefined})")
    page = ctx.new_page()
    page.goto(site[1])
    assert not page.locator("#open-camera").is_visible()
    label = page.locator("#file-label")
    assert label.is_visible() and "primary" in (label.get_attribute("class") or "")
    assert page.locator("#file").get_attribute("capture") == "user"
    assert page.locator("#file").get_attribute("accept") == "video/*"
    ctx.close()


def test_every_catalogue_has_every_string_the_page_uses() -> None:
    root = Path(i18n.__file__).parent
    used = set(re.findall(r"t\['([a-z_.]+)'\]", (root / "templates/patient_page.html").read_text()))
    used |= set(
        re.findall(r"t\['([a-z_.]+)'\]", (root / "templates/patient_gone.html").read_text())
    )
    script = (root / "static/patient.js").read_text()
    used |= set(re.findall(r"""\bt\("([a-z_.]+)"[,)]""", script))
    # Keys built at run time: one per status, day state and reason the API can return.
    used |= {f"status.{s}" for s in schema.STATUSES} | {
        f"state.{s}"
        for s in ("taken", "pending", "unclear", "rejected", "missed", "excused", "not_due", "rest")
    }
    used |= {
        "reason.pill_not_seen",
        "reason.not_the_patient",
        "reason.video_unclear",
        "reason.other",
        "reason.again",
    }
    assert len(used) > 60
    catalogues = i18n.catalogues()
    assert {"en", "zh-Hans"} <= catalogues.keys()
    for lang, messages in catalogues.items():
        assert used <= messages.keys(), (lang, used - messages.keys())
        assert messages.keys() == catalogues["en"].keys(), lang
        assert all(isinstance(v, str) and v.strip() for v in messages.values()), lang


@pytest.mark.parametrize(
    ("accept", "chosen", "cookie", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", None, None, "zh-Hans"),
        ("zh-TW", None, None, "zh-Hans"),
        ("en-US,en;q=0.9,zh;q=0.8", None, None, "en"),
        ("fr-FR,de;q=0.5", None, None, "en"),
        ("", None, None, "en"),
        ("zh-CN", "en", None, "en"),
        ("zh-CN", None, "en", "en"),
        ("en", "xx-evil", "zh-Hans", "zh-Hans"),
    ],
)
def test_language_choice(accept: str, chosen, cookie, expected: str) -> None:
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    assert i18n.pick(chosen, cookie, parse_accept_header(accept, LanguageAccept)) == expected
