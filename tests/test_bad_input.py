"""Bad input through the real upload path: tus against the app served by waitress (as `vot serve`
runs it) on a real database, store and Redis, with real ffmpeg-made files and a real worker.

Each case ends in one of the two ways the contract allows: a 4xx reply with a JSON body
``{"error": ...}``, or an accepted submission that the worker ends ``rejected`` with a reason the
patient sees in ``GET /api/v1/me/submissions``. After each, the server still answers and another
patient's upload goes through.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from waitress.server import create_server

from review_ui import create_app
from tests.conftest import big_video, header_only, video, work
from vot import accounts, schema, tokens
from vot.app.serve import web_app
from vot.media import ffmpeg_exe

API = "/api/v1/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
RECORDED = "2026-11-05T08:30:00+00:00"
PIECE = {"Content-Type": "application/offset+octet-stream"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **TUS}


@dataclass(frozen=True)
class Site:
    base: str
    sender: str  # the token of the patient who sends the bad input
    other: str  # another patient's token, whose upload must still go through


def serve(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``app`` on waitress on a free loopback port, as ``vot serve`` runs it."""
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:

        def close_all() -> None:  # run in the server's own loop, which ends once nothing is open
            for channel in list(server._map.values()):
                channel.close()

        server.trigger.pull_trigger(close_all)
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()


@pytest.fixture
def site(settings, engine, redis, redis_url, monkeypatch) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    """Two patients and the app with its queue; ``work()`` finds the same database and store."""
    for key, value in {
        "VOT_DATA_DIR": str(settings.data_dir),
        "VOT_DATABASE_URL": settings.database_url,
        "VOT_REDIS_URL": redis_url,
        "VOT_SECRET_KEY": settings.secret_key,
    }.items():
        monkeypatch.setenv(key, value)
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        for code in ("P-1", "P-2"):
            accounts.add_patient(conn, code, clinic, date(2026, 11, 1), "UTC")
        links = [tokens.link_token(conn, settings.secret_key, c) for c in ("P-1", "P-2")]
    for base in serve(web_app(settings.with_(redis_url=redis_url))):
        yield Site(base, *links)


def send(base: str, token: str, data: bytes, **metadata: str) -> requests.Response:
    """Upload ``data`` in one piece; the reply to the last request made."""
    values = {"filename": "dose.mp4", "recorded_at": RECORDED, **metadata}
    meta = ",".join(f"{k} {b64(v)}" for k, v in values.items())
    created = requests.post(
        base + API,
        headers={**bearer(token), "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        timeout=30,
    )
    if created.status_code != 201:
        return created
    return requests.patch(
        base + created.headers["Location"],
        data=data,
        headers={**bearer(token), **PIECE, "Upload-Offset": "0"},
        timeout=120,
    )


def mine(base: str, token: str) -> list[dict]:
    reply = requests.get(base + "/api/v1/me/submissions", headers=bearer(token), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def refused(reply: requests.Response, status: int, words: str = "") -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json"), reply.text
    assert words in reply.json()["error"], reply.json()


def others_still_served(site: Site) -> int:
    """The server answers and another patient's real video is accepted; its submission id."""
    assert requests.get(site.base + "/healthz", timeout=10).json() == {"ok": True}
    good = send(site.base, site.other, video().read_bytes(), filename="eat.mp4")
    assert good.status_code == 204, good.text
    return int(good.headers["Vot-Submission-Id"])


# ---- Files that are not usable videos, made with the real ffmpeg. ----


def ffmpeg(tmp: Path, name: str, *args: str) -> bytes:
    out = tmp / name
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, str(out)]
    subprocess.run(cmd, check=True, timeout=120)
    return out.read_bytes()


def lavfi(source: str, *args: str) -> list[str]:
    return ["-f", "lavfi", "-i", source, *args]


def truncated(tmp: Path) -> bytes:
    whole = ffmpeg(tmp, "w.mp4", *lavfi("testsrc2=size=320x240:rate=15", "-t", "2"))
    return whole[: len(whole) // 2]  # the moov atom is at the end: it is cut off


MAKERS: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "png image named .mp4": (
        lambda t: ffmpeg(t, "i.png", *lavfi("testsrc2=size=64x64", "-frames:v", "1")),
        "too short",
    ),
    "truncated mp4, no moov": (truncated, "not a usable video"),
    "audio only": (
        lambda t: ffmpeg(t, "a.mp4", *lavfi("sine=frequency=440:duration=2", "-c:a", "aac")),
        "sound but no picture",
    ),
    "a single frame": (
        lambda t: ffmpeg(t, "one.mp4", *lavfi("testsrc2=size=320x240:rate=25", "-frames:v", "1")),
        "too short",
    ),
    "8K picture, 99 kB file": (
        lambda t: ffmpeg(
            t,
            "8k.mp4",
            *lavfi("color=c=gray:size=7680x4320:rate=2", "-t", "1"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ),
        "larger than allowed",
    ),
    "200 s long, 4 kB file": (
        lambda t: ffmpeg(t, "long.mp4", *lavfi("color=c=black:size=16x16:rate=1", "-t", "200")),
        "the limit is 180 s",
    ),
    "text with a video content type": (
        lambda t: b"not a video at all, whatever the metadata says\n" * 100,
        "not a usable video",
    ),
}


@pytest.mark.parametrize("case", list(MAKERS))
def test_unusable_file_is_refused_with_a_json_error(site: Site, tmp_path: Path, case: str) -> None:
    make, words = MAKERS[case]
    reply = send(site.base, site.sender, make(tmp_path), filetype="video/mp4")
    refused(reply, 422, words)
    assert reply.json()["code"] == "refused"
    assert mine(site.base, site.sender) == []  # nothing recorded for the sender
    others_still_served(site)
    assert [s["status"] for s in mine(site.base, site.other)] == ["received"]


def frames_missing(tmp: Path) -> bytes:
    # The moov atom is at the front, so it probes as an 8 s video, but its frames are zeros.
    return header_only(big_video())


def frame_lasting_4s(tmp: Path) -> bytes:
    return ffmpeg(
        tmp, "still.mp4", *lavfi("testsrc2=size=320x240:rate=1", "-frames:v", "1", "-r", "0.25")
    )


@pytest.mark.parametrize("make", [frames_missing, frame_lasting_4s], ids=lambda f: f.__name__)
def test_accepted_but_unusable_ends_rejected_with_a_reason(
    site: Site, engine, tmp_path: Path, make: Callable[[Path], bytes]
) -> None:  # type: ignore[no-untyped-def]
    reply = send(site.base, site.sender, make(tmp_path))
    assert reply.status_code == 204, reply.text
    good = others_still_served(site)
    work()
    [sub] = mine(site.base, site.sender)
    assert sub["status"] == "rejected" and sub["reason"], sub
    assert str(sub["id"]) == reply.headers["Vot-Submission-Id"]
    [other] = mine(site.base, site.other)
    assert other["id"] == good and other["status"] in ("review", "auto_accepted"), other


def test_lying_content_types(site: Site) -> None:
    data = video().read_bytes()
    created = requests.post(
        site.base + API,
        headers={**bearer(site.sender), "Upload-Length": str(len(data))},
        timeout=10,
    )
    url = site.base + created.headers["Location"]
    for content_type in ("video/mp4", "application/json", "multipart/form-data; boundary=x", ""):
        reply = requests.patch(
            url,
            data=data,
            headers={**bearer(site.sender), "Upload-Offset": "0", "Content-Type": content_type},
            timeout=10,
        )
        refused(reply, 415, "offset+octet-stream")
    # A JSON body in place of the tus headers: the headers are what counts.
    as_json = requests.post(
        site.base + API, json={"Upload-Length": 10}, headers=bearer(site.sender), timeout=10
    )
    refused(as_json, 400, "Upload-Length")
    # A real video whose name and declared type say text is still a video: content decides.
    ok = send(site.base, site.sender, data, filename="notes.txt", filetype="text/plain")
    assert ok.status_code == 204, ok.text
    others_still_served(site)


# Sent as bytes where a client could send them: Eastern Arabic digits in UTF-8.
BAD_NUMBERS: list[str | bytes] = ["-1", "+10", "abc", "1.5", "1e3", "0x10", "9" * 16, "10, 10"]
BAD_NUMBERS.append("١٢".encode())


def test_tus_wrong_lengths_offsets_and_ids(site: Site, engine, settings) -> None:  # type: ignore[no-untyped-def]
    auth = bearer(site.sender)
    refused(requests.post(site.base + API, headers={**auth, "Upload-Length": "0"}), 400, "empty")
    for bad in BAD_NUMBERS:
        reply = requests.post(site.base + API, headers={**auth, "Upload-Length": bad}, timeout=10)
        refused(reply, 400, "Upload-Length must be a whole number")
    refused(
        requests.post(site.base + API, headers={**auth, "Upload-Defer-Length": "1"}, timeout=10),
        400,
        "Upload-Defer-Length",
    )
    data = video().read_bytes()
    created = requests.post(
        site.base + API, headers={**auth, "Upload-Length": str(len(data))}, timeout=10
    )
    url = site.base + created.headers["Location"]

    def patch(offset: str | bytes, body: bytes, **headers: str) -> requests.Response:
        return requests.patch(
            url, data=body, headers={**auth, **PIECE, "Upload-Offset": offset, **headers}
        )

    for bad in BAD_NUMBERS:
        refused(patch(bad, data[:10]), 400, "Upload-Offset must be a whole number")
    refused(patch("5", data[:10]), 409, "at byte 0")  # skipping ahead would leave a hole
    refused(patch("0", data + b"x"), 413, "past the declared length")
    # A chunked piece (no Content-Length): waitress reads it whole, so it simply counts.
    chunked = requests.patch(
        url, data=iter([data[:10]]), headers={**auth, **PIECE, "Upload-Offset": "0"}
    )
    assert chunked.status_code == 204 and chunked.headers["Upload-Offset"] == "10"
    # Content-Length promises more than arrives, then the connection drops.
    host, port = site.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("PATCH", created.headers["Location"])
    for key, value in {**auth, **PIECE, "Upload-Offset": "10", "Content-Length": "99999"}.items():
        conn.putheader(key, value)
    conn.endheaders(data[10:30000])
    conn.sock.close()
    head = requests.head(url, headers=auth, timeout=10)
    assert 10 <= int(head.headers["Upload-Offset"]) <= 30000  # at most what arrived counts
    rest = patch(head.headers["Upload-Offset"], data[int(head.headers["Upload-Offset"]) :])
    assert rest.status_code == 204, rest.text
    with engine.connect() as conn_:
        stored = conn_.execute(select(schema.submissions.c.content_sha256)).scalar_one()
    assert stored == hashlib.sha256(data).hexdigest()  # nothing lost, nothing doubled
    refused(patch(str(len(data)), b"more"), 413)  # finished: no more bytes
    for bad_id in ("..%2F..%2Fetc%2Fpasswd", "0" * 31 + "g", "a" * 500, "%00"):
        reply = requests.head(f"{site.base}{API}/{bad_id}", headers=auth, timeout=10)
        assert reply.status_code == 404
        refused(requests.get(f"{site.base}{API}/{bad_id}", headers=auth, timeout=10), 404)
    others_still_served(site)


def test_oversized_headers_and_metadata(site: Site) -> None:
    auth = bearer(site.sender)
    huge_meta = f"filename {b64('视' * 3000)}"
    refused(
        requests.post(
            site.base + API,
            headers={**auth, "Upload-Length": "10", "Upload-Metadata": huge_meta},
            timeout=10,
        ),
        400,
        "longer than",
    )
    refused(
        requests.get(
            site.base + "/api/v1/me/submissions", headers=bearer("A" * 100_000), timeout=10
        ),
        401,
    )
    # Past waitress's own limit (256 kB of headers) the server answers before the app does.
    giant = requests.post(site.base + API, headers={**auth, "X-Padding": "x" * 300_000}, timeout=10)
    assert 400 <= giant.status_code < 500
    others_still_served(site)


# ---- The JSON and form APIs of the review app, through Flask's test client. ----


@pytest.fixture
def staff(settings, engine):  # type: ignore[no-untyped-def]
    """A signed-in supervisor's client and a submission of theirs waiting for a verdict."""
    from test_review import PASSWORD, add_sub, make_world

    world = make_world(engine)
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.5)
    client = create_app(settings).test_client()
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    client.post("/login", data={"username": "sup-a", "password": PASSWORD, "csrf_token": token})
    client.environ_base["HTTP_X_CSRF_TOKEN"] = token
    return client, sub


WRONG = [None, 1, -1.5, True, [], {}, ["accept"], {"verdict": "accept"}, "x" * 5000, 10**30]


def test_json_with_wrong_types_gets_a_json_error(staff, engine) -> None:  # type: ignore[no-untyped-def]
    client, sub = staff
    for value in WRONG:
        for path, body in (
            (f"/review/{sub}/verdict", {"verdict": value, "reason": value, "note": value}),
            ("/review/bulk", {"min": value, "upto_id": value}),
            ("/review/undo", {"ids": value}),
            ("/login", {"username": value, "password": value}),
        ):
            reply = client.post(path, json=body)
            assert 400 <= reply.status_code < 500, (path, body, reply.status_code)
            assert reply.is_json and reply.get_json()["error"], (path, body)
    # Numbers too big for the database, in the path and the form.
    for path in (f"/review/{10**30}/verdict", "/review/99999999999999999999/verdict"):
        reply = client.post(path, json={"verdict": "accept"})
        assert 400 <= reply.status_code < 500 and reply.get_json()["error"], path
    reply = client.post(
        "/review/bulk", data={"min": "0.5", "upto_id": str(10**30)}, headers={"Accept": "json"}
    )
    assert 400 <= reply.status_code < 500, reply.status_code
    with engine.connect() as conn:
        status = conn.execute(
            select(schema.submissions.c.status).where(schema.submissions.c.id == sub)
        ).scalar_one()
    assert status == schema.REVIEW  # none of it decided anything


def test_oversized_form_fields_are_refused(staff) -> None:  # type: ignore[no-untyped-def]
    client, sub = staff
    for field in ("note", "reason", "verdict"):
        reply = client.post(
            f"/review/{sub}/verdict",
            data={"verdict": "unclear", field: "n" * 2_000_000},
            headers={"Accept": "application/json"},
        )
        assert reply.status_code in (400, 413) and reply.get_json()["error"], field
    login = client.post("/login", data={"username": "u" * 2_000_000, "password": "p"})
    assert login.status_code in (400, 413)


def test_nul_characters_are_refused_not_a_crash(staff) -> None:  # type: ignore[no-untyped-def]
    client, sub = staff  # PostgreSQL cannot store a NUL: these used to be 500s there
    json_please = {"Accept": "application/json"}
    login = client.post("/login", data={"username": "a\x00b", "password": "x"}, headers=json_please)
    for reply in (
        login,
        client.get("/review?patient=%00", headers=json_please),
        client.post(f"/review/{sub}/verdict", data={"note": "a\x00"}, headers=json_please),
    ):
        assert reply.status_code == 400 and "NUL" in reply.get_json()["error"]


@given(
    value=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=50),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=10,
    )
)
@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_json_body_gets_a_4xx_json_error_never_a_crash(staff, value) -> None:  # type: ignore[no-untyped-def]
    client, sub = staff
    for path in (f"/review/{sub}/verdict", "/review/bulk", "/api/v1/uploads"):
        reply = client.post(  # json= would send no body at all for None
            path,
            data=json.dumps(value),
            content_type="application/json",
            headers={**TUS, "Upload-Length": "x"},
        )
        assert 400 <= reply.status_code < 500, (path, value, reply.status_code)
        assert reply.is_json and reply.get_json()["error"]


@given(
    length=st.text(max_size=20) | st.integers(-10, 10**12).map(str),
    metadata=st.text(max_size=200),
)
@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_upload_creation_headers_are_created_or_refused_cleanly(  # type: ignore[no-untyped-def]
    settings, engine, length: str, metadata: str
) -> None:
    with engine.begin() as conn:
        if not conn.execute(select(schema.patients.c.id)).first():
            clinic = accounts.ensure_clinic(conn, "Clinic A")
            accounts.add_patient(conn, "P-9", clinic, date(2026, 11, 1), "UTC")
        token = tokens.link_token(conn, settings.secret_key, "P-9")
    client = create_app(settings).test_client()
    try:
        headers = {**bearer(token), "Upload-Length": length, "Upload-Metadata": metadata}
        reply = client.post(API, headers=headers)
    except ValueError:
        return  # not a header an HTTP client can send (a line break in it)
    assert reply.status_code in (201, 400, 413, 429), (length, metadata, reply.status_code)
    if reply.status_code != 201:
        assert reply.get_json()["error"]
