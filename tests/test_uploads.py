"""Resumable uploads (vot.intake.uploads, vot.upload_*) on a real database, real files and real
ffmpeg."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import video
from vot import accounts, schema
from vot.intake import expiry as upload_expiry
from vot.intake import finish as upload_finish
from vot.intake import uploads
from vot.intake import writes as upload_writes
from vot.media import ffmpeg_exe, probe
from vot.storage import open_storage


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@pytest.fixture
def patient(engine) -> accounts.Patient:
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        patient, _ = accounts.add_patient(conn, "P-1", clinic, date(2026, 11, 1), "Asia/Shanghai")
        accounts.add_patient(conn, "P-2", clinic, date(2026, 11, 1))
    return patient


def upload_all(engine, settings, patient, data: bytes, piece: int = 50_000, **metadata) -> str:
    up = upload_writes.create(engine, settings, patient.id, len(data), meta(**metadata))
    for start in range(0, len(data), piece):
        chunk = data[start : start + piece]
        upload_writes.append(
            engine, settings, patient.id, up.id, start, io.BytesIO(chunk), len(chunk)
        )
    return up.id


def submissions(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(schema.submissions)).all()


def test_pieces_become_one_submission_and_the_partial_file_goes(engine, settings, patient) -> None:
    data = video().read_bytes()
    upload_id = upload_all(
        engine,
        settings,
        patient,
        data,
        filename="../../etc/dose\x00.mkv",
        recorded_at="2026-11-05T23:50:00+08:00",
    )
    up = uploads.get(engine, patient.id, upload_id)
    assert up.complete and not up.finished and up.filename == "dose.mkv"
    assert uploads.part_path(settings, upload_id).read_bytes() == data
    got = upload_finish.finish(engine, open_storage(settings), settings, patient, upload_id)
    assert got.created and got.dose_date == date(2026, 11, 5)  # the recording day in Shanghai
    assert not uploads.part_path(settings, upload_id).exists()
    [row] = submissions(engine)
    assert row.content_sha256 == hashlib.sha256(data).hexdigest()
    assert row.original_filename == "dose.mkv" and row.status == schema.RECEIVED
    # Finishing again (a retried request) returns the same submission and records nothing new.
    again = upload_finish.finish(engine, open_storage(settings), settings, patient, upload_id)
    assert again.submission_id == got.submission_id and not again.created
    # The same recording sent again as a new upload is still one submission.
    second = upload_all(engine, settings, patient, data, recorded_at="2026-11-05T23:50:00+08:00")
    dup = upload_finish.finish(engine, open_storage(settings), settings, patient, second)
    assert dup.submission_id == got.submission_id and not dup.created
    assert len(submissions(engine)) == 1


def test_wrong_offset_and_overlong_pieces_are_refused(engine, settings, patient) -> None:
    up = upload_writes.create(engine, settings, patient.id, 100, meta(filename="a.webm"))
    upload_writes.append(engine, settings, patient.id, up.id, 0, io.BytesIO(b"x" * 40), 40)
    with pytest.raises(uploads.OffsetMismatch) as info:
        upload_writes.append(engine, settings, patient.id, up.id, 0, io.BytesIO(b"y" * 10), 10)
    assert info.value.offset == 40
    with pytest.raises(uploads.TooLarge, match="past the declared length"):
        upload_writes.append(engine, settings, patient.id, up.id, 40, io.BytesIO(b"z" * 61), 61)
    assert uploads.get(engine, patient.id, up.id).offset == 40
    assert uploads.part_path(settings, up.id).read_bytes() == b"x" * 40
    # A partial upload is never handed to ingest.
    with pytest.raises(uploads.UploadError, match="40 of 100"):
        upload_finish.finish(engine, open_storage(settings), settings, patient, up.id)
    assert submissions(engine) == []


class Dropped(io.RawIOBase):
    """A request body whose connection drops after ``cut`` bytes."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut, self.pos = data, cut, 0

    def read(self, n: int = -1) -> bytes:
        if self.pos >= self.cut:
            raise ConnectionResetError("client went away")
        block = self.data[self.pos : min(self.cut, self.pos + n)]
        self.pos += len(block)
        return block


def test_bytes_before_a_drop_count_and_stray_bytes_do_not(engine, settings, patient) -> None:
    data = video().read_bytes()
    up = upload_writes.create(engine, settings, patient.id, len(data), meta(filename="d.mkv"))
    with pytest.raises(ConnectionResetError):
        upload_writes.append(
            engine, settings, patient.id, up.id, 0, Dropped(data, 70_000), len(data)
        )
    assert uploads.get(engine, patient.id, up.id).offset == 70_000
    # A crash after writing but before recording leaves bytes past the offset: they are dropped.
    with open(uploads.part_path(settings, up.id), "ab") as fh:
        fh.write(b"garbage that was never recorded")
    rest = data[70_000:]
    upload_writes.append(engine, settings, patient.id, up.id, 70_000, io.BytesIO(rest), len(rest))
    got = upload_finish.finish(engine, open_storage(settings), settings, patient, up.id)
    [row] = submissions(engine)
    assert row.id == got.submission_id and row.content_sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.mp4", b"this is not a video, just text renamed\n" * 100, "not a usable video"),
        ("zero.webm", b"\x00" * 5000, "not a usable video"),
    ],
)
def test_unusable_video_is_refused_with_its_reason_and_bytes_removed(
    engine, settings, patient, name: str, content: bytes, message: str
) -> None:
    upload_id = upload_all(engine, settings, patient, content, filename=name)
    with pytest.raises(uploads.Refused, match=message):
        upload_finish.finish(engine, open_storage(settings), settings, patient, upload_id)
    assert submissions(engine) == []
    assert not uploads.part_path(settings, upload_id).exists()
    up = uploads.get(engine, patient.id, upload_id)
    assert up.finished and message in (up.error or "")
    with pytest.raises(uploads.Refused):  # a resumed client learns the same outcome
        upload_finish.finish(engine, open_storage(settings), settings, patient, upload_id)


def browser_like_webm(tmp_path: Path) -> Path:
    """A live WebM without a duration in its header, as a browser's MediaRecorder writes."""
    out = tmp_path / "recorded.webm"
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(video()),
        "-an",
        "-c:v",
        "libvpx",
        "-b:v",
        "300k",
        "-f",
        "webm",
        "-live",
        "1",
        "pipe:1",
    ]
    with open(out, "wb") as fh:
        subprocess.run(cmd, stdout=fh, check=True, timeout=120)
    return out


def test_a_browser_webm_without_duration_is_accepted(engine, settings, patient, tmp_path) -> None:
    webm = browser_like_webm(tmp_path)
    assert probe(webm).duration_s == 0  # what ingest alone would refuse as too short
    data = webm.read_bytes()
    ids = [upload_all(engine, settings, patient, data, filename="rec.webm") for _ in range(2)]
    got = [upload_finish.finish(engine, open_storage(settings), settings, patient, i) for i in ids]
    assert got[0].created and got[1].submission_id == got[0].submission_id
    [row] = submissions(engine)
    assert row.duration_s == pytest.approx(2.0, abs=0.1)
    assert list(uploads.part_path(settings, ids[0]).parent.iterdir()) == []  # no copies left


def test_limits_and_scoping(engine, settings, patient) -> None:
    with pytest.raises(uploads.TooLarge, match="limit is 100 MB"):
        upload_writes.create(engine, settings, patient.id, 100 * 1024 * 1024 + 1, None)
    with pytest.raises(uploads.UploadError, match="empty"):
        upload_writes.create(engine, settings, patient.id, 0, None)
    with pytest.raises(uploads.BadMetadata, match="ISO 8601"):
        upload_writes.create(engine, settings, patient.id, 10, meta(recorded_at="yesterday"))
    with pytest.raises(uploads.BadMetadata, match="UTC offset"):
        upload_writes.create(
            engine, settings, patient.id, 10, meta(recorded_at="2026-11-05T08:00:00")
        )
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    with pytest.raises(uploads.BadMetadata, match="clock|date and time"):
        upload_writes.create(engine, settings, patient.id, 10, meta(recorded_at=future))
    up = upload_writes.create(engine, settings, patient.id, 10, None)
    other = accounts_id(engine, "P-2")
    with pytest.raises(uploads.UploadNotFound):  # another patient's token cannot see or touch it
        uploads.get(engine, other, up.id)
    with pytest.raises(uploads.UploadNotFound):
        upload_writes.terminate(engine, settings, other, up.id)
    for _ in range(upload_writes.MAX_OPEN_PER_PATIENT - 1):
        upload_writes.create(engine, settings, patient.id, 10, None)
    with pytest.raises(uploads.TooMany):
        upload_writes.create(engine, settings, patient.id, 10, None)
    upload_writes.terminate(engine, settings, patient.id, up.id)
    assert not uploads.part_path(settings, up.id).exists()
    upload_writes.create(engine, settings, patient.id, 10, None)  # room again


def accounts_id(engine, code: str) -> int:
    with engine.connect() as conn:
        return accounts.get_patient(conn, code).id


def test_a_writer_holds_the_upload(engine, settings, patient) -> None:
    import fcntl

    up = upload_writes.create(engine, settings, patient.id, 10, None)
    with open(uploads.part_path(settings, up.id), "r+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(uploads.Busy):
            upload_writes.append(engine, settings, patient.id, up.id, 0, io.BytesIO(b"a" * 10), 10)
        assert (
            upload_expiry.expire_uploads(engine, settings, datetime.now(UTC) + timedelta(days=2))
            == 0
        )
    assert uploads.get(engine, patient.id, up.id).offset == 0


def test_expiry_removes_idle_unfinished_uploads_and_their_bytes(engine, settings, patient) -> None:
    data = video().read_bytes()
    idle = upload_writes.create(engine, settings, patient.id, len(data), None)
    upload_writes.append(engine, settings, patient.id, idle.id, 0, io.BytesIO(data[:5000]), 5000)
    done = upload_all(engine, settings, patient, data)
    upload_finish.finish(engine, open_storage(settings), settings, patient, done)
    stray = uploads.part_path(settings, "0" * 32)
    stray.write_bytes(b"left by a crash")
    os.utime(stray, (0, 0))
    now = datetime.now(UTC)
    assert upload_expiry.expire_uploads(engine, settings, now) == 1  # only the stray file is old
    assert not stray.exists() and uploads.part_path(settings, idle.id).exists()
    fresh = upload_writes.create(engine, settings, patient.id, 10, None)
    assert upload_expiry.expire_uploads(engine, settings, now + timedelta(hours=25)) == 2
    assert not uploads.part_path(settings, idle.id).exists()
    with pytest.raises(uploads.UploadNotFound):
        uploads.get(engine, patient.id, idle.id)
    with pytest.raises(uploads.UploadNotFound):
        uploads.get(engine, patient.id, fresh.id)
    # A finished upload is remembered a week, so a resumed client learns its outcome; the
    # submission itself is never touched.
    assert uploads.get(engine, patient.id, done).submission_id is not None
    upload_expiry.expire_uploads(engine, settings, now + timedelta(days=8))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.uploads)).scalar_one() == 0
    assert len(submissions(engine)) == 1
