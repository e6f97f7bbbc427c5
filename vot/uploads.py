"""Resumable uploads, the state behind the tus endpoint: create, append at an offset, finish.

The bytes of an upload in progress live in ``data_dir/uploads/<id>.part``; the row in
``uploads`` records how many of them were received (``offset_bytes``). Only the recorded offset
counts: bytes past it (a write cut short by a crash) are dropped before the next append, and an
upload is handed to :func:`vot.ingest.ingest_file` only once the offset reaches the declared
length. Uploads idle for a day are removed by :func:`expire_uploads`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import logging
import os
import re
import secrets
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, func, select

from vot import schema
from vot.accounts import Patient
from vot.config import Settings
from vot.db import as_utc, utcnow
from vot.ingest import Ingested, IngestError, ingest_file
from vot.media import MediaError, ffmpeg_exe, probe
from vot.storage import Storage, StorageError

logger = logging.getLogger(__name__)

EXPIRE_AFTER = timedelta(days=1)  # an unfinished upload idle this long is abandoned
KEEP_FINISHED = timedelta(days=7)  # a resumed client can still learn how its upload ended
MAX_OPEN_PER_PATIENT = 10  # bounds the disk a leaked link can fill
BLOCK = 64 * 1024
MAX_METADATA_CHARS = 4096
MAX_FILENAME_CHARS = 100
LOCK_WAIT_S = 2.0  # how long a request waits for another to let go of an upload
FUTURE_SLACK = timedelta(hours=26)  # the phone's clock may be a time zone or so off
_KEY = re.compile(r"[!-+\--~]{1,64}")  # printable ASCII without space or comma (tus)
_ID = re.compile(r"[0-9a-f]{32}")
u = schema.uploads


class UploadError(ValueError):
    """An upload request that cannot be carried out; the message says why."""

    code = "bad_request"  # a stable word for the API, which clients map to their own language


class BadMetadata(UploadError):
    code = "bad_metadata"


class TooLarge(UploadError):
    code = "too_large"


class TooMany(UploadError):
    code = "too_many"


class NotFound(UploadError):
    code = "not_found"


class Busy(UploadError):
    code = "busy"


class Refused(UploadError):
    """The finished upload is not a usable video; the message says why."""

    code = "refused"


class OffsetMismatch(UploadError):
    code = "offset_mismatch"

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Upload:
    id: str
    patient_id: int
    length: int
    offset: int
    filename: str
    recorded_at: datetime | None
    submission_id: int | None
    error: str | None
    updated_at: datetime

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    @property
    def finished(self) -> bool:
        """Ingested or refused: nothing more will happen to it."""
        return self.submission_id is not None or self.error is not None


def part_path(settings: Settings, upload_id: str) -> Path:
    """Where the bytes of ``upload_id`` are kept while it is in progress.

    Raises:
        NotFound: ``upload_id`` is not the shape of an id this module makes.
    """
    if not _ID.fullmatch(upload_id):
        raise NotFound("no such upload")
    return settings.data_dir / "uploads" / f"{upload_id}.part"


def parse_metadata(header: str | None) -> dict[str, str]:
    """Decode a tus ``Upload-Metadata`` header: ``key base64value`` pairs separated by commas.

    Raises:
        BadMetadata: malformed, a duplicate key, a value that is not base64 of UTF-8 text, or
            longer than :data:`MAX_METADATA_CHARS`.
    """
    if not header or not header.strip():
        return {}
    if len(header) > MAX_METADATA_CHARS:
        raise BadMetadata(f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters")
    out: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not _KEY.fullmatch(key):
            raise BadMetadata("Upload-Metadata keys are 1-64 printable ASCII characters")
        if key in out:
            raise BadMetadata(f"Upload-Metadata has {key!r} twice")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadMetadata(f"Upload-Metadata {key!r} is not base64 of UTF-8 text") from None
    return out


def clean_filename(name: str) -> str:
    """A file name safe to store and show: no folders, control characters or leading dots."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    # C*: control, format (e.g. right-to-left override), surrogates; Zl/Zp: line breaks.
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Zl", "Zp"))
    name = name.strip().lstrip(".").strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = dot + ext if dot and len(ext) <= 8 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep)].rstrip() + keep
    return name or "video"


def parse_recorded_at(text: str, now: datetime) -> datetime:
    """The recording time from ISO 8601 text with a UTC offset.

    Raises:
        BadMetadata: not ISO 8601, no offset, before 2000, or more than a day ahead of ``now``.
    """
    example = "e.g. 2026-03-01T08:30:00+08:00"
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadMetadata(f"recorded_at must be an ISO 8601 time, {example}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadMetadata(f"recorded_at needs a UTC offset, {example}")
    try:
        if value.year < 2000 or value > now + FUTURE_SLACK:
            raise OverflowError
    except OverflowError:
        raise BadMetadata(
            "the recording time is impossible; check the phone's date and time"
        ) from None
    return value


def create(
    engine: Engine, settings: Settings, patient_id: int, length: int, metadata: str | None
) -> Upload:
    """Start an upload of ``length`` bytes described by a tus ``Upload-Metadata`` header.

    Raises:
        BadMetadata: the metadata is malformed or ``recorded_at`` is not a usable time.
        TooLarge: ``length`` is over the upload limit.
        TooMany: the patient already has too many unfinished uploads.
        vot.storage.StorageError: the disk has no room for the upload's file.
    """
    if length < 1:
        raise UploadError("the video is empty; record it again")
    if length > settings.max_upload_mb * 1024 * 1024:
        raise TooLarge(
            f"the video is {length / 1e6:.0f} MB; the limit is {settings.max_upload_mb} MB. "
            "Record a shorter clip."
        )
    meta = parse_metadata(metadata)
    now = utcnow()
    recorded_at = parse_recorded_at(meta["recorded_at"], now) if "recorded_at" in meta else None
    if recorded_at is not None:
        recorded_at = recorded_at.astimezone(UTC)  # SQLite keeps no offset: store UTC
    filename = clean_filename(meta.get("filename") or meta.get("name") or "")
    upload_id = secrets.token_hex(16)
    path = part_path(settings, upload_id)
    with engine.begin() as conn:
        open_now = conn.execute(
            select(func.count()).where(
                u.c.patient_id == patient_id, u.c.submission_id.is_(None), u.c.error.is_(None)
            )
        ).scalar_one()
        if open_now >= MAX_OPEN_PER_PATIENT:
            raise TooMany("too many unfinished uploads; let them finish, or try again tomorrow")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=False)
        except OSError as exc:  # disk full (no room even for an empty file)
            raise StorageError(f"could not start an upload: {exc.strerror or exc}") from exc
        conn.execute(
            u.insert().values(
                id=upload_id,
                patient_id=patient_id,
                length_bytes=length,
                offset_bytes=0,
                filename=filename,
                recorded_at=recorded_at,
                created_at=now,
                updated_at=now,
            )
        )
    logger.info("upload %s started (%s bytes)", upload_id, length)
    return get(engine, patient_id, upload_id)


def get(engine: Engine, patient_id: int, upload_id: str) -> Upload:
    """The patient's upload ``upload_id``.

    Raises:
        NotFound: no such upload for this patient (or it expired).
    """
    if not _ID.fullmatch(upload_id):  # e.g. a NUL, which PostgreSQL refuses in a query
        raise NotFound("no such upload; it may have expired, so send the video again")
    with engine.connect() as conn:
        row = conn.execute(
            select(u).where(u.c.id == upload_id, u.c.patient_id == patient_id)
        ).first()
    if row is None:
        raise NotFound("no such upload; it may have expired, so send the video again")
    return Upload(
        id=row.id,
        patient_id=row.patient_id,
        length=row.length_bytes,
        offset=row.offset_bytes,
        filename=row.filename,
        recorded_at=as_utc(row.recorded_at),
        submission_id=row.submission_id,
        error=row.error,
        updated_at=as_utc(row.updated_at) or row.updated_at,
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    # flock, not a database lock: it also holds against other processes and dies with them.
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below, after the lock is released
    except FileNotFoundError:
        raise NotFound("the upload's data is gone; send the video again") from None
    try:
        # Wait a little: a child process forked by another thread (ffmpeg probing some other
        # upload) holds a copy of this lock until it execs, which made finishing answer 423.
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    message = "another request is writing this upload; try again shortly"
                    raise Busy(message) from None
                time.sleep(0.05)
        yield fh
    finally:
        fh.close()


def _check_can_append(up: Upload, offset: int, count: int) -> None:
    if up.error is not None:
        raise Refused(up.error)
    if offset != up.offset:
        raise OffsetMismatch(f"the upload is at byte {up.offset}, not {offset}", up.offset)
    if count > up.length - up.offset:
        raise TooLarge(f"this piece goes past the declared length of {up.length} bytes")


def _write_at(fd: int, start: int, data: bytes, upload_id: str) -> None:
    view, position = memoryview(data), start
    try:
        while view:
            done = os.pwrite(fd, view, position)
            view, position = view[done:], position + done
    except OSError as exc:  # disk full, quota, file size limit
        os.ftruncate(fd, start)  # free what the block took; it is not counted
        raise StorageError(f"could not save upload {upload_id}: {exc.strerror or exc}") from exc


def _sync(fd: int, recorded: int, upload_id: str) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        os.ftruncate(fd, recorded)  # none of this piece is known to be on disk
        raise StorageError(f"could not save upload {upload_id}: {exc.strerror or exc}") from exc


def append(
    engine: Engine,
    settings: Settings,
    patient_id: int,
    upload_id: str,
    offset: int,
    stream: BinaryIO,
    count: int,
) -> Upload:
    """Write ``count`` bytes read from ``stream`` at ``offset``; returns the upload after.

    Bytes that arrive before the stream fails (a dropped connection) are kept and counted, so
    the client resumes after them.

    Raises:
        NotFound, Refused, Busy, TooLarge: as their names say.
        OffsetMismatch: ``offset`` is not where the upload stands (its ``offset`` says where).
        vot.storage.StorageError: the disk refused the bytes (full); those of the failed block
            are dropped and the rest counted, so the client resumes once there is room.
    """
    _check_can_append(get(engine, patient_id, upload_id), offset, count)
    with _locked(part_path(settings, upload_id)) as fh:
        up = get(engine, patient_id, upload_id)  # another request may have moved it meanwhile
        _check_can_append(up, offset, count)
        # Unbuffered writes: a full disk fails the write that hit it, not a later flush.
        fd = fh.fileno()
        os.ftruncate(fd, up.offset)
        written = 0
        try:
            while written < count:
                block = stream.read(min(BLOCK, count - written))
                if not block:
                    break
                _write_at(fd, up.offset + written, block, upload_id)
                written += len(block)
        finally:
            if written:
                _sync(fd, up.offset, upload_id)
                with engine.begin() as conn:
                    conn.execute(
                        u.update()
                        .where(u.c.id == upload_id, u.c.offset_bytes == up.offset)
                        .values(offset_bytes=up.offset + written, updated_at=utcnow())
                    )
    return get(engine, patient_id, upload_id)


def _with_duration(path: Path, settings: Settings) -> Path:
    """The file, or a copy with its duration written when the header has none.

    Browsers' MediaRecorder writes WebM without a duration, which ingest would read as 0 s.
    The copy changes no frame, and the same input always gives the same bytes (bitexact), so
    the same recording sent twice is still one submission.
    """
    try:
        if probe(path, settings.ffmpeg).duration_s > 0:
            return path
    except MediaError:
        return path  # ingest refuses it, with the reason
    fixed = path.with_name(path.stem + ".remux.mkv")
    cmd = [ffmpeg_exe(settings.ffmpeg), "-hide_banner", "-nostdin", "-y", "-i", str(path)]
    cmd += ["-map", "0", "-c", "copy", "-fflags", "+bitexact", "-map_metadata", "-1"]
    try:
        proc = subprocess.run(
            [*cmd, "-f", "matroska", str(fixed)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=settings.transcode_timeout_s,
        )
        failed = proc.stderr[-500:] if proc.returncode != 0 else None
    except subprocess.TimeoutExpired:
        failed = f"ffmpeg took longer than {settings.transcode_timeout_s} s"
    if failed is not None:
        logger.warning("could not rewrite %s with its duration: %s", path.name, failed)
        fixed.unlink(missing_ok=True)
        return path  # ingest then refuses it as too short, with that reason
    return fixed


def _close(engine: Engine, upload_id: str, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(u.update().where(u.c.id == upload_id).values(updated_at=utcnow(), **values))


def _result(engine: Engine, up: Upload) -> Ingested:
    s = schema.submissions
    with engine.connect() as conn:
        day, status = conn.execute(
            select(s.c.dose_date, s.c.status).where(s.c.id == up.submission_id)
        ).one()
    return Ingested(int(up.submission_id or 0), False, day, status)


def finish(
    engine: Engine, storage: Storage, settings: Settings, patient: Patient, upload_id: str
) -> Ingested:
    """Ingest a complete upload (once: later calls return the same submission).

    Raises:
        Refused: the video is not usable (the reason is kept; the bytes are removed).
        UploadError: the upload is not complete yet.
        vot.storage.StorageError: the store failed; the bytes are kept, so finishing can be
            tried again.
    """
    up = get(engine, patient.id, upload_id)
    if up.error is not None:
        raise Refused(up.error)
    if up.submission_id is not None:
        return _result(engine, up)
    path = part_path(settings, upload_id)
    with _locked(path):
        up = get(engine, patient.id, upload_id)
        if up.finished:
            return finish(engine, storage, settings, patient, upload_id)
        if not up.complete:
            raise UploadError(f"the upload has {up.offset} of {up.length} bytes; send the rest")
        source = _with_duration(path, settings)
        try:
            got = ingest_file(
                engine,
                storage,
                settings,
                patient.code,
                source,
                recorded_at=up.recorded_at,
                original_filename=up.filename,
                actor=f"patient:{patient.id}",
            )
        except IngestError as exc:
            _close(engine, upload_id, error=str(exc)[:1000])
            path.unlink(missing_ok=True)
            logger.info("upload %s refused: %s", upload_id, exc)
            raise Refused(str(exc)) from None
        finally:
            if source != path:
                source.unlink(missing_ok=True)
        _close(engine, upload_id, submission_id=got.submission_id)
        path.unlink(missing_ok=True)
    return got


def terminate(engine: Engine, settings: Settings, patient_id: int, upload_id: str) -> None:
    """Forget an upload and remove its bytes (tus termination); a finished video stays.

    Raises:
        NotFound: no such upload for this patient.
        Busy: a request is writing it right now.
    """
    get(engine, patient_id, upload_id)
    path = part_path(settings, upload_id)
    with contextlib.ExitStack() as stack:
        if path.exists():
            stack.enter_context(_locked(path))
        path.unlink(missing_ok=True)
        with engine.begin() as conn:
            conn.execute(u.delete().where(u.c.id == upload_id, u.c.patient_id == patient_id))


def expire_uploads(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Remove unfinished uploads idle for :data:`EXPIRE_AFTER` and their bytes; returns how many.

    Also forgets finished uploads after :data:`KEEP_FINISHED`, and removes stray files that no
    upload owns (a crash between writing a file and its row). Safe to call from several
    processes at once; the web app calls it every few minutes, and a sweeper may too.
    """
    now = now or utcnow()
    with engine.connect() as conn:
        rows = conn.execute(
            select(u.c.id, u.c.submission_id, u.c.error, u.c.updated_at).where(
                u.c.updated_at < now - EXPIRE_AFTER
            )
        ).all()
    expired = 0
    for row in rows:
        finished = row.submission_id is not None or row.error is not None
        if finished and as_utc(row.updated_at) >= now - KEEP_FINISHED:  # type: ignore[operator]
            continue
        path = part_path(settings, row.id)
        try:
            with contextlib.ExitStack() as stack:
                if path.exists():
                    stack.enter_context(_locked(path))
                path.unlink(missing_ok=True)
                with engine.begin() as conn:
                    conn.execute(u.delete().where(u.c.id == row.id))
        except (Busy, NotFound):
            continue  # in use right now, or another process removed it first
        expired += 0 if finished else 1
    folder = settings.data_dir / "uploads"
    cutoff = (now - EXPIRE_AFTER).timestamp()
    for path in folder.iterdir() if folder.is_dir() else ():
        with engine.connect() as conn:
            owner = path.name.split(".", 1)[0]
            owned = conn.execute(select(u.c.id).where(u.c.id == owner)).first()
        if owned is None and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            expired += 1
    if expired:
        logger.info("expired %s unfinished upload(s)", expired)
    return expired
