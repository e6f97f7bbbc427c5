"""Writing a tus upload: create it, append a piece at its offset, or terminate it."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC
from typing import BinaryIO

from sqlalchemy import Engine, func, select

from vot import schema
from vot.config import Settings
from vot.db import utcnow
from vot.intake.metadata import clean_filename, parse_metadata, parse_recorded_at
from vot.intake.uploads import (
    OffsetMismatch,
    Refused,
    TooLarge,
    TooMany,
    Upload,
    UploadError,
    get,
    locked,
    part_path,
    remove,
)
from vot.storage import StorageError

logger = logging.getLogger(__name__)
u = schema.uploads

MAX_OPEN_PER_PATIENT = 10  # bounds the disk a leaked link can fill
BLOCK = 64 * 1024


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
        UploadNotFound, Refused, Busy, TooLarge: as their names say.
        OffsetMismatch: ``offset`` is not where the upload stands (its ``offset`` says where).
        vot.storage.StorageError: the disk refused the bytes (full); those of the failed block
            are dropped and the rest counted, so the client resumes once there is room.
    """
    _check_can_append(get(engine, patient_id, upload_id), offset, count)
    with locked(part_path(settings, upload_id)) as fh:
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


def terminate(engine: Engine, settings: Settings, patient_id: int, upload_id: str) -> None:
    """Forget an upload and remove its bytes (tus termination); a finished video stays.

    Raises:
        UploadNotFound: no such upload for this patient.
        Busy: a request is writing it right now.
    """
    get(engine, patient_id, upload_id)
    remove(engine, settings, upload_id, u.c.patient_id == patient_id)
