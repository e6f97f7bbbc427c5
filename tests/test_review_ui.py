"""The review web app through Flask's test client, on a real database and real video files."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import video
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from test_review import PASSWORD, World, add_sub, make_world

from review_ui import create_app
from vot import schema
from vot.config import Settings
from vot.media import probe
from vot.storage import open_storage
from workers.transcode.encode import transcode

EVENTS = ({"type": "hand_to_mouth", "start_s": 0.8, "end_s": 1.6, "score": 0.7},)


@pytest.fixture(scope="module")
def review_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A browser-playable review copy and poster made by the real transcoder from a real clip."""
    src = video()
    out = tmp_path_factory.mktemp("review-copy")
    transcode(src, out / "review.mp4", out / "poster.jpg", probe(src))
    return out / "review.mp4", out / "poster.jpg"


def store_video(settings: Settings, sub_id: int, copy: tuple[Path, Path]) -> None:
    storage = open_storage(settings)
    storage.put_file(f"review/{sub_id}.mp4", copy[0], "video/mp4")
    storage.put_file(f"poster/{sub_id}.jpg", copy[1], "image/jpeg")


@pytest.fixture
def world(engine) -> World:  # type: ignore[no-untyped-def]
    return make_world(engine)


@pytest.fixture
def app(settings: Settings, engine, world: World) -> Flask:  # type: ignore[no-untyped-def]
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def login(client: FlaskClient, username: str = "sup-a", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = form_token(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return str(session["csrf"])


def status_of(engine, sub_id: int) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(schema.submissions.c.status).where(schema.submissions.c.id == sub_id)
            ).scalar_one()
        )


def audit_count(engine, action: str) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(schema.audit_log.c.action == action)
            ).scalar_one()
        )


def test_health_and_security_headers(client: FlaskClient) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200 and reply.get_json() == {"ok": True}
    page = client.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in page.get_data(as_text=True)  # all script comes from static/


def test_signed_out_is_sent_to_login_or_gets_401_json(client: FlaskClient) -> None:
    reply = client.get("/review")
    assert reply.status_code == 302 and reply.headers["Location"].startswith("/login")
    api = client.get("/review", headers={"Accept": "application/json"})
    assert api.status_code == 401 and "error" in api.get_json()


def test_login_logout_and_cookie_flags(client: FlaskClient, engine) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login").get_data(as_text=True)
    assert 'name="username"' in page and 'name="password"' in page
    wrong_user = login(client, "nobody", PASSWORD)
    wrong_pass = login(client, "sup-a", "not-the-password")
    assert wrong_user.status_code == wrong_pass.status_code == 401
    message = "the username or password is wrong"
    assert message in wrong_user.get_data(as_text=True)
    assert message in wrong_pass.get_data(as_text=True)
    reply = login(client)
    assert reply.status_code == 302 and reply.headers["Location"] == "/review"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/review").status_code == 200
    assert audit_count(engine, "auth.login") == 1
    assert audit_count(engine, "auth.login_failed") == 2
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 302
    assert client.get("/review").status_code == 302


def test_secure_cookie_behind_https(settings: Settings, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    client = create_app(settings.with_(public_url="https://vot.example.org")).test_client()
    assert "Secure" in login(client).headers["Set-Cookie"]


def test_failed_logins_are_rate_limited(client: FlaskClient) -> None:
    for _ in range(10):
        assert login(client, "sup-a", "wrong-password").status_code == 401
    blocked = login(client, "sup-a", PASSWORD)
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.get_data(True)
    assert login(client, "sup-b", PASSWORD).status_code == 302  # another user is not blocked


def test_sessions_expire(client: FlaskClient, settings: Settings) -> None:
    login(client)
    with client.session_transaction() as session:
        session["login_at"] = int(time.time()) - settings.session_minutes * 60 - 1
    reply = client.get("/review")
    assert reply.status_code == 302 and reply.headers["Location"].startswith("/login")


def test_csrf_is_required_on_every_post(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.5)
    assert (
        client.post("/login", data={"username": "sup-a", "password": PASSWORD}).status_code == 400
    )
    login(client)
    for data in ({"verdict": "accept"}, {"verdict": "accept", "csrf_token": "forged"}):
        reply = client.post(f"/review/{sub}/verdict", data=data)
        assert reply.status_code == 400
    api = client.post(
        f"/review/{sub}/verdict", data={"verdict": "accept"}, headers={"Accept": "application/json"}
    )
    assert api.status_code == 400 and "error" in api.get_json()
    assert status_of(engine, sub) == schema.REVIEW
    ok = client.post(
        f"/review/{sub}/verdict",
        data={"verdict": "accept"},
        headers={"X-CSRF-Token": csrf(client), "Accept": "application/json"},
    )
    assert ok.status_code == 200 and ok.get_json()["status"] == schema.ACCEPTED


def test_queue_lists_items_in_confidence_order(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        subs = {c: add_sub(conn, world.patient_a, world.today, c) for c in (0.3, 0.9, 0.6)}
        add_sub(conn, world.patient_a, world.today, 0.4, reasons=("too_dark",))
        add_sub(conn, world.patient_b, world.today, 0.99)
    login(client)
    html = client.get("/review").get_data(as_text=True)
    rows = re.findall(r'data-submission-id="(\d+)"\s+data-confidence="([\d.]+)"', html)
    assert [float(c) for _, c in rows] == [0.9, 0.6, 0.4, 0.3]
    assert int(rows[0][0]) == subs[0.9]
    assert 'id="count-waiting">4<' in html
    flipped = client.get("/review?order=doubtful").get_data(as_text=True)
    assert re.findall(r'data-confidence="([\d.]+)"', flipped)[0] == "0.3000"
    dark = client.get("/review?reason=too_dark").get_data(as_text=True)
    assert re.findall(r'data-confidence="([\d.]+)"', dark) == ["0.4000"]
    assert client.get("/review?from=yesterday").status_code == 400


def test_clinic_isolation_and_analyst_refusal(
    client: FlaskClient,
    app: Flask,
    engine,  # type: ignore[no-untyped-def]
    world: World,
    settings: Settings,
    review_copy: tuple[Path, Path],
) -> None:
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.5, events=EVENTS, key_moment=1.0)
    store_video(settings, sub, review_copy)
    login(client, "sup-b")
    for path in (
        f"/review/{sub}",
        f"/review/{sub}/video",
        f"/review/{sub}/poster.jpg",
        f"/review/{sub}/still/1000.jpg",
        f"/patients/{world.patient_a}",
    ):
        assert client.get(path).status_code == 404, path
    refused = client.post(
        f"/review/{sub}/verdict", data={"verdict": "accept", "csrf_token": csrf(client)}
    )
    assert refused.status_code == 404 and status_of(engine, sub) == schema.REVIEW
    analyst = app.test_client()
    login(analyst, "analyst")
    for path in (
        "/review",
        f"/review/{sub}",
        f"/review/{sub}/video",
        "/review/auto",
        "/review/bulk?min=0.9",
        "/patients",
        f"/patients/{world.patient_a}",
    ):
        assert analyst.get(path).status_code == 403, path
    admin = app.test_client()
    login(admin, "admin")
    assert admin.get(f"/review/{sub}").status_code == 200


def test_video_supports_range_requests_and_every_access_is_audited(  # type: ignore[no-untyped-def]
    client: FlaskClient, engine, world: World, settings: Settings, review_copy: tuple[Path, Path]
) -> None:
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.5, events=EVENTS, key_moment=1.0)
    store_video(settings, sub, review_copy)
    size = review_copy[0].stat().st_size
    login(client)
    part = client.get(f"/review/{sub}/video", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert part.data == review_copy[0].read_bytes()[100:200]
    whole = client.get(f"/review/{sub}/video")
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.mimetype == "video/mp4" and len(whole.data) == size
    assert "no-store" in whole.headers["Cache-Control"]
    assert audit_count(engine, "video.view") == 2
    page = client.get(f"/review/{sub}").get_data(as_text=True)
    assert f'src="/review/{sub}/video"' in page and 'data-key-moment="1.0"' in page
    assert "Hand to mouth" in page and "could not be sure" in page  # events; reasons in words
    still = client.get(f"/review/{sub}/still/1200.jpg")  # the middle of the event
    assert still.status_code == 200 and still.data[:2] == b"\xff\xd8"
    assert open_storage(settings).exists(f"stills/{sub}/1200.jpg")
    assert client.get(f"/review/{sub}/still/1201.jpg").status_code == 404
    assert audit_count(engine, "video.still") == 2


def test_verdicts_move_on_and_undo_restores(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        first = add_sub(conn, world.patient_a, world.today, 0.9)
        second = add_sub(conn, world.patient_a, world.today, 0.7)
    login(client)
    client.get("/review")
    reply = client.post(
        f"/review/{first}/verdict",
        data={
            "verdict": "reject",
            "reason": "pill not seen",
            "note": "hand hid the mouth",
            "csrf_token": csrf(client),
        },
    )
    assert reply.status_code == 302 and reply.headers["Location"] == f"/review/{second}"
    assert status_of(engine, first) == schema.REJECTED
    with engine.connect() as conn:
        entry = conn.execute(
            select(schema.audit_log).where(schema.audit_log.c.action == "review.reject")
        ).one()
    assert (entry.actor, entry.target) == ("sup-a", f"submission:{first}")
    no_reason = client.post(
        f"/review/{second}/verdict", data={"verdict": "reject", "csrf_token": csrf(client)}
    )
    assert no_reason.headers["Location"] == f"/review/{second}"
    assert status_of(engine, second) == schema.REVIEW
    undo = client.post("/review/undo", data={"csrf_token": csrf(client)})
    assert undo.status_code == 302 and undo.headers["Location"] == f"/review/{first}"
    assert status_of(engine, first) == schema.REVIEW
    assert audit_count(engine, "review.undo") == 1
    twice = client.post(
        f"/review/{first}/verdict",
        headers={"Accept": "application/json"},
        data={"verdict": "accept", "csrf_token": csrf(client)},
    )
    assert twice.get_json()["next"] == f"/review/{second}"
    again = client.post(
        f"/review/{first}/verdict",
        headers={"Accept": "application/json"},
        data={"verdict": "accept", "csrf_token": csrf(client)},
    )
    assert again.status_code == 409 and "already decided" in again.get_json()["error"]


def test_bulk_accept_previews_then_accepts(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        high = [add_sub(conn, world.patient_a, world.today, c) for c in (0.95, 0.91)]
        low = add_sub(conn, world.patient_a, world.today, 0.5)
    login(client)
    page = client.get("/review/bulk?min=0.9").get_data(as_text=True)
    assert 'id="bulk-count">2<' in page
    upto = re.search(r'name="upto_id" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    reply = client.post(
        "/review/bulk", data={"min": "0.9", "upto_id": upto, "csrf_token": csrf(client)}
    )
    assert reply.status_code == 302
    assert [status_of(engine, i) for i in (*high, low)] == [
        schema.ACCEPTED,
        schema.ACCEPTED,
        schema.REVIEW,
    ]
    assert audit_count(engine, "review.bulk_accept") == 1
    assert client.get("/review/bulk?min=lots").status_code == 400


def test_spot_check_overturn_shows_agreement(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        autos = [
            add_sub(conn, world.patient_a, world.today, 0.97, status=schema.AUTO_ACCEPTED)
            for _ in range(2)
        ]
    login(client)
    sample = client.get("/review/auto?sample=5").get_data(as_text=True)
    drawn = [int(i) for i in re.findall(r'data-submission-id="(\d+)"', sample)]
    assert sorted(drawn) == autos
    first = client.post(
        f"/review/{drawn[0]}/verdict", data={"verdict": "accept", "csrf_token": csrf(client)}
    )
    assert first.headers["Location"] == f"/review/{drawn[1]}"  # on through the sample
    client.post(
        f"/review/{drawn[1]}/verdict",
        data={"verdict": "reject", "reason": "not the patient", "csrf_token": csrf(client)},
    )
    page = client.get("/review/auto").get_data(as_text=True)
    assert "1 of 2" in page and "50%" in page


def test_patient_calendar(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.5)
    login(client)
    page = client.get(f"/patients/{world.patient_a}").get_data(as_text=True)
    assert f'data-date="{world.today}" data-state="pending"' in page
    assert f'href="/review/{sub}"' in page
    assert page.count('data-state="missed"') == 20
    assert "A-001" in client.get("/patients").get_data(as_text=True)
    assert client.get(f"/patients/{world.patient_b}").status_code == 404


def test_missing_video_file_is_404_not_500(client: FlaskClient, engine, world: World) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.5)
    login(client)
    assert client.get(f"/review/{sub}/video").status_code == 404


def test_printable_upload_link_with_qr_code(
    client: FlaskClient,
    app: Flask,
    engine,
    world: World,  # type: ignore[no-untyped-def]
) -> None:
    login(client)
    calendar = client.get(f"/patients/{world.patient_a}").get_data(as_text=True)
    assert f'href="/patients/{world.patient_a}/link"' in calendar
    card = client.get(f"/patients/{world.patient_a}/link").get_data(as_text=True)
    url = re.search(r"<code>(http://[^<]+/p/([A-Za-z0-9_-]+))</code>", card)
    assert url and "<svg" in card
    # The printed link is the patient's live link: it opens their page.
    assert client.get(f"/p/{url.group(2)}").status_code == 200
    assert audit_count(engine, "patient.link_printed") == 1
    assert client.get(f"/patients/{world.patient_b}/link").status_code == 404
    analyst = app.test_client()
    login(analyst, "analyst")
    assert analyst.get(f"/patients/{world.patient_a}/link").status_code == 403
