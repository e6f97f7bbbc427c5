"""The tus endpoint as clients use it: the real tuspy client and raw HTTP against the app served
on 127.0.0.1 by a threaded Werkzeug server, on a real database, store and Redis."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.storage.filestorage import FileStorage

from review_ui import create_app
from tests.conftest import big_video, video
from tests.serving import served
from vot import accounts, tokens
from vot.app.serve import web_app
from vot.intake import expiry as upload_expiry
from vot.intake import metadata as upload_metadata
from vot.intake import uploads
from vot.pipeline import machine as pipeline

API = "/api/v1/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
RECORDED = "2026-11-05T08:30:00+08:00"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def links(engine, settings) -> dict[str, str]:
    """Tokens of two patients, plus a revoked one."""
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        for code in ("P-1", "P-2", "P-3"):
            accounts.add_patient(conn, code, clinic, date(2026, 11, 1), "Asia/Shanghai")
        found = {
            code: tokens.link_token(conn, settings.secret_key, code) for code in ("P-1", "P-2")
        }
        found["revoked"] = tokens.link_token(conn, settings.secret_key, "P-3")
        tokens.revoke(conn, "P-3")
    return found


@pytest.fixture
def base(settings, engine) -> Iterator[str]:
    with served(create_app(settings)) as url:
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tus_uploader(base: str, token: str, path: Path, **kw):
    client = TusClient(base + API, headers=bearer(token))
    metadata = kw.pop("metadata", {"filename": path.name, "recorded_at": RECORDED})
    return client.uploader(
        file_path=str(path), chunk_size=kw.pop("chunk_size", 64 * 1024), metadata=metadata, **kw
    )


def my_submissions(base: str, token: str) -> list[dict]:
    response = requests.get(base + "/api/v1/me/submissions", headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_chunked_upload_of_a_real_clip(base, links) -> None:
    path = big_video()  # 2.5 MB: about forty pieces
    uploader = tus_uploader(base, links["P-1"], path)
    uploader.upload()
    last = uploader.request.response_headers
    assert last["upload-offset"] == str(path.stat().st_size) and last["tus-resumable"] == "1.0.0"
    [sub] = my_submissions(base, links["P-1"])
    assert str(sub["id"]) == last["vot-submission-id"]
    assert (
        sub["dose_date"] == "2026-11-05" and sub["status"] == "received" and sub["reason"] is None
    )
    assert sub["recorded_at"].startswith("2026-11-05T00:30:00")  # the same moment, in UTC
    head = requests.head(uploader.url, headers={**TUS, **bearer(links["P-1"])}, timeout=10)
    assert head.status_code == 200 and head.headers["Cache-Control"] == "no-store"
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"]
    assert head.headers["Vot-Submission-Id"] == str(sub["id"])
    assert my_submissions(base, links["P-2"]) == []  # another patient sees nothing of it


def test_an_interrupted_upload_resumes_where_it_stopped(base, links, tmp_path) -> None:
    path = big_video()
    chunk = 256 * 1024
    urls = FileStorage(str(tmp_path / "tus-urls.json"))
    first = tus_uploader(
        base, links["P-1"], path, chunk_size=chunk, store_url=True, url_storage=urls
    )
    first.upload(stop_at=3 * chunk)  # then the phone loses the network
    del first
    assert my_submissions(base, links["P-1"]) == []
    resumed = tus_uploader(
        base, links["P-1"], path, chunk_size=chunk, store_url=True, url_storage=urls
    )
    assert resumed.offset == 3 * chunk  # a new client learnt the offset from the stored URL
    resumed.upload()
    [sub] = my_submissions(base, links["P-1"])
    assert resumed.request.response_headers["vot-submission-id"] == str(sub["id"])


def test_protocol_headers_and_refusals(base, links) -> None:
    options = requests.options(base + API, timeout=10)
    assert options.status_code == 204
    assert options.headers["Tus-Version"] == "1.0.0" and options.headers["Tus-Resumable"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {"creation", "termination"}
    assert options.headers["Tus-Max-Size"] == str(100 * 1024 * 1024)
    auth = {**TUS, **bearer(links["P-1"])}
    for version in ({}, {"Tus-Resumable": "0.2.2"}):
        old = requests.post(
            base + API,
            headers={**bearer(links["P-1"]), **version, "Upload-Length": "10"},
            timeout=10,
        )
        assert old.status_code == 412 and old.headers["Tus-Version"] == "1.0.0"
    big = requests.post(
        base + API, headers={**auth, "Upload-Length": str(101 * 1024 * 1024)}, timeout=10
    )
    assert big.status_code == 413 and "limit is 100 MB" in big.json()["error"]
    no_length = requests.post(base + API, headers=auth, timeout=10)
    assert no_length.status_code == 400 and "Upload-Length" in no_length.json()["error"]
    created = requests.post(base + API, headers={**auth, "Upload-Length": "100"}, timeout=10)
    assert created.status_code == 201 and created.headers["Upload-Offset"] == "0"
    url = base + created.headers["Location"]
    piece = {**auth, "Content-Type": "application/offset+octet-stream"}
    ok = requests.patch(url, data=b"a" * 30, headers={**piece, "Upload-Offset": "0"}, timeout=10)
    assert ok.status_code == 204 and ok.headers["Upload-Offset"] == "30"
    wrong = requests.patch(url, data=b"b" * 10, headers={**piece, "Upload-Offset": "0"}, timeout=10)
    assert wrong.status_code == 409 and wrong.headers["Upload-Offset"] == "30"
    assert wrong.json()["code"] == "offset_mismatch"
    lying = requests.patch(
        url,
        data=b"c" * 10,
        timeout=10,
        headers={**auth, "Upload-Offset": "30", "Content-Type": "video/mp4"},
    )
    assert lying.status_code == 415 and "offset+octet-stream" in lying.json()["error"]
    beyond = requests.patch(
        url, data=b"d" * 71, headers={**piece, "Upload-Offset": "30"}, timeout=10
    )
    assert beyond.status_code == 413
    assert requests.head(url, headers=auth, timeout=10).headers["Upload-Offset"] == "30"
    gone = requests.delete(url, headers=auth, timeout=10)
    assert gone.status_code == 204 and gone.headers["Tus-Resumable"] == "1.0.0"
    assert requests.head(url, headers=auth, timeout=10).status_code == 404


def test_tokens_guard_every_route(base, links) -> None:
    created = requests.post(
        base + API, timeout=10, headers={**TUS, **bearer(links["P-1"]), "Upload-Length": "10"}
    )
    url = base + created.headers["Location"]
    for headers, status in (
        ({}, 401),
        (bearer("A" * 22), 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        (bearer(links["revoked"]), 403),
    ):
        refused = requests.post(
            base + API, headers={**TUS, **headers, "Upload-Length": "10"}, timeout=10
        )
        assert refused.status_code == status and refused.json()["error"]
        assert requests.head(url, headers={**TUS, **headers}, timeout=10).status_code == status
        me = requests.get(base + "/api/v1/me/submissions", headers=headers, timeout=10)
        assert me.status_code == status and me.json()["code"].startswith("link_")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Another patient's token cannot see or delete this upload.
    other = {**TUS, **bearer(links["P-2"])}
    assert requests.head(url, headers=other, timeout=10).status_code == 404
    assert requests.delete(url, headers=other, timeout=10).status_code == 404


def test_bad_metadata_is_refused_and_file_names_are_made_safe(base, links, engine) -> None:
    auth = {**TUS, **bearer(links["P-1"]), "Upload-Length": "10"}
    for bad in (
        f"recorded_at {b64('last tuesday')}",
        f"recorded_at {b64('2026-11-05T08:30:00')}",
        "filename not*base64!",
        f"filename {b64('a')},filename {b64('b')}",
    ):
        refused = requests.post(base + API, headers={**auth, "Upload-Metadata": bad}, timeout=10)
        assert refused.status_code == 400, bad
        assert refused.json()["code"] == "bad_metadata" and refused.json()["error"]
    path = video()
    evil = "../../../../tmp/\x00evil\u202e" + "视" * 300 + ".mkv"
    uploader = tus_uploader(
        base, links["P-1"], path, metadata={"filename": evil, "recorded_at": RECORDED}
    )
    uploader.upload()
    from sqlalchemy import select

    from vot import schema

    with engine.connect() as conn:
        name = conn.execute(select(schema.submissions.c.original_filename)).scalar_one()
    assert name.startswith("evil视") and name.endswith(".mkv") and len(name) <= 100
    assert "/" not in name and "\x00" not in name and "\u202e" not in name
    assert not Path("/tmp/evil").exists()


@pytest.mark.parametrize("content", [b"hello, this is a text file\n" * 200, b"\x00" * 4096])
def test_a_file_that_is_not_a_video_is_refused_with_a_json_error(
    base, links, tmp_path, content: bytes
) -> None:
    fake = tmp_path / "dose.mp4"  # named like a video; the content decides
    fake.write_bytes(content)
    uploader = tus_uploader(base, links["P-1"], fake)
    with pytest.raises(TusUploadFailed) as failed:
        uploader.upload()
    assert failed.value.status_code == 422
    assert b"not a usable video" in failed.value.response_content
    head = requests.head(uploader.url, headers={**TUS, **bearer(links["P-1"])}, timeout=10)
    assert head.status_code == 410  # a resumed client learns it was refused
    state = requests.get(uploader.url, headers=bearer(links["P-1"]), timeout=10)
    assert state.status_code == 410 and "not a usable video" in state.json()["error"]
    assert my_submissions(base, links["P-1"]) == []


def test_the_same_recording_twice_is_one_submission(base, links) -> None:
    ids = set()
    for _ in range(2):
        uploader = tus_uploader(base, links["P-1"], video())
        uploader.upload()
        ids.add(uploader.request.response_headers["vot-submission-id"])
    assert len(ids) == 1 and len(my_submissions(base, links["P-1"])) == 1


def test_expiry_removes_the_bytes_of_an_abandoned_upload(base, links, settings, engine) -> None:
    uploader = tus_uploader(base, links["P-1"], big_video())
    uploader.upload(stop_at=128 * 1024)
    upload_id = uploader.url.rsplit("/", 1)[1]
    part = uploads.part_path(settings, upload_id)
    assert part.stat().st_size == 128 * 1024
    assert upload_expiry.expire_uploads(engine, settings) == 0  # not idle long enough yet
    assert (
        upload_expiry.expire_uploads(engine, settings, datetime.now(UTC) + timedelta(hours=25)) == 1
    )
    assert not part.exists()
    head = requests.head(uploader.url, headers={**TUS, **bearer(links["P-1"])}, timeout=10)
    assert head.status_code == 404
    with pytest.raises((TusCommunicationError, TusUploadFailed)):
        uploader.upload()  # the old URL is gone; a client starts again with a new upload


def test_a_finished_upload_is_queued_for_processing(settings, engine, links, redis, redis_url):
    from rq.job import Job

    from workers.queue import job_id

    app = web_app(settings.with_(redis_url=redis_url))
    with served(app) as base:
        uploader = tus_uploader(base, links["P-1"], video())
        uploader.upload()
    sub_id = int(uploader.request.response_headers["vot-submission-id"])
    job = Job.fetch(job_id(pipeline.TRANSCODE, sub_id), connection=redis)
    assert job.args == (sub_id,)


# ---- Fuzzing the metadata parsing: any input is either parsed or refused with BadMetadata. ----

keys = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=","),
    min_size=1,
    max_size=20,
)


@given(st.dictionaries(keys, st.text(max_size=60), max_size=6))
@hsettings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_metadata_round_trips(values: dict[str, str]) -> None:
    header = ",".join(f"{k} {b64(v)}" if v else k for k, v in values.items())
    assert upload_metadata.parse_metadata(header) == values


@given(st.text(max_size=300))
@hsettings(max_examples=500)
def test_any_metadata_header_is_parsed_or_refused_cleanly(header: str) -> None:
    try:
        parsed = upload_metadata.parse_metadata(header)
    except uploads.BadMetadata as exc:
        assert str(exc)
    else:
        assert all(isinstance(v, str) for v in parsed.values())


@given(st.text(max_size=400))
@hsettings(max_examples=500)
def test_any_file_name_is_made_safe(name: str) -> None:
    safe = upload_metadata.clean_filename(name)
    assert safe and len(safe) <= upload_metadata.MAX_FILENAME_CHARS and len(safe.encode()) <= 400
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe == safe.strip()
    assert upload_metadata.clean_filename(safe) == safe  # cleaning is stable


@given(
    st.one_of(
        st.text(max_size=60),
        st.datetimes(timezones=st.timezones()).map(str),
        st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    )
)
@hsettings(max_examples=500)
def test_any_recorded_at_is_parsed_or_refused_cleanly(text: str) -> None:
    now = datetime(2026, 11, 5, tzinfo=UTC)
    try:
        value = upload_metadata.parse_recorded_at(text, now)
    except uploads.BadMetadata as exc:
        assert str(exc)
    else:
        assert value.utcoffset() is not None and value <= now + timedelta(hours=26)
        value.astimezone(UTC)  # ingest turns it into the patient's day: it must not overflow


def test_metadata_header_length_is_bounded() -> None:
    with pytest.raises(uploads.BadMetadata, match="longer"):
        upload_metadata.parse_metadata("filename " + b64("x" * 5000))
    digest = hashlib.sha256(b"x").hexdigest()
    assert upload_metadata.parse_metadata(f"k {b64(digest)}") == {"k": digest}
