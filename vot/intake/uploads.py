"""Resumable uploads, the state behind the tus endpoint: the upload row, its bytes and its lock.

The bytes of an upload in progress live in ``data_dir/uploads/<id>.part``; the row in
``uploads`` records how many of them were received (``offset_bytes``). Only the recorded offset
counts: bytes past it (a write cut short by a crash) are dropped before the next append
(:mod:`vot.intake.writes`), and an upload is handed to :func:`vot.intake.ingest.ingest_file` only
once the offset reaches the declared length (:mod:`vot.intake.finish`). Uploads idle for a day are
removed by :func:`vot.intake.expiry.expire_uploads`.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, select
from sqlalchemy.sql import ColumnElement

from vot import schema
from vot.config import Settings
from vot.db import as_utc

LOCK_WAIT_S = 2.0  # how long a request waits for another to let go of an upload
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


class UploadNotFound(UploadError):
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
        UploadNotFound: ``upload_id`` is not the shape of an id this module makes.
    """
    if not _ID.fullmatch(upload_id):
        raise UploadNotFound("no such upload")
    return settings.data_dir / "uploads" / f"{upload_id}.part"


def get(engine: Engine, patient_id: int, upload_id: str) -> Upload:
    """The patient's upload ``upload_id``.

    Raises:
        UploadNotFound: no such upload for this patient (or it expired).
    """
    if not _ID.fullmatch(upload_id):  # e.g. a NUL, which PostgreSQL refuses in a query
        raise UploadNotFound("no such upload; it may have expired, so send the video again")
    with engine.connect() as conn:
        row = conn.execute(
            select(u).where(u.c.id == upload_id, u.c.patient_id == patient_id)
        ).first()
    if row is None:
        raise UploadNotFound("no such upload; it may have expired, so send the video again")
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
def locked(path: Path) -> Iterator[BinaryIO]:
    # flock, not a database lock: it also holds against other processes and dies with them.
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below, after the lock is released
    except FileNotFoundError:
        raise UploadNotFound("the upload's data is gone; send the video again") from None
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


def remove(engine: Engine, settings: Settings, upload_id: str, *where: ColumnElement[bool]) -> None:
    """Delete the bytes and the row of ``upload_id``, once no request is writing it.

    ``where``: further conditions the row must meet to be deleted (e.g. its patient).

    Raises:
        Busy: a request is writing it right now.
        UploadNotFound: its bytes went between looking and locking (another process removed it).
    """
    path = part_path(settings, upload_id)
    with contextlib.ExitStack() as stack:
        if path.exists():
            stack.enter_context(locked(path))
        path.unlink(missing_ok=True)
        with engine.begin() as conn:
            conn.execute(u.delete().where(u.c.id == upload_id, *where))
