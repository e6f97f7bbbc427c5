"""Take in one video for one dose: check it, store it as received, record the submission.

Every way in (``vot submit``, the web upload, the demo) goes through :func:`ingest_file`, which
also hands a new submission to the queue it is given. The file is
checked by probing its content, never by its name. The same file for the same dose is one
submission, however often it is sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from vot import schema
from vot.accounts import get_patient
from vot.config import Settings
from vot.db import audit, inserted_id, utcnow
from vot.media import MediaError, probe
from vot.storage import Storage, keys
from vot.treatment import days

logger = logging.getLogger(__name__)

MIN_DURATION_S = 1.0  # shorter cannot show a dose being taken (and catches single images)


Enqueue = Callable[[int], bool]
"""Queue the jobs of a new submission (by id); whether it was queued (False: no queue runs).

The core does not know the queue: the entry layer passes one in (for rq,
:func:`workers.queue.enqueuer`). A video that could not be queued is not lost: it is stored and
recorded as received, and the sweeper queues it once a queue runs.
"""


def no_queue(_sub_id: int) -> bool:
    """An :data:`Enqueue` for callers without a queue: the sweeper queues the video later."""
    return False


class IngestError(ValueError):
    """The video was refused; the message says why in words the sender can act on."""


@dataclass(frozen=True)
class Ingested:
    submission_id: int
    created: bool  # False when this file had already been received for this dose
    dose_date: date
    status: str
    queued: bool = False  # handed to the queue


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def dose_date_for(recorded_at: datetime | None, timezone: str) -> date:
    """The dose day: the recording time (else now) as a date in the patient's time zone."""
    moment = recorded_at if recorded_at is not None else utcnow()
    if moment.tzinfo is None:
        raise IngestError("recorded_at needs a UTC offset, e.g. 2026-03-01T08:30:00+08:00")
    return moment.astimezone(ZoneInfo(timezone)).date()


def check_video(path: Path, settings: Settings) -> float:
    """Probe the file and apply the size and duration limits; returns its duration.

    Raises:
        IngestError: not a usable video, or over a limit.
    """
    size = path.stat().st_size
    if size > settings.max_upload_mb * 1024 * 1024:
        raise IngestError(
            f"the video is {size / 1e6:.0f} MB; the limit is "
            f"{settings.max_upload_mb} MB. Record a shorter clip."
        )
    try:
        info = probe(path, settings.ffmpeg)
    except MediaError as exc:
        raise IngestError(f"not a usable video: {exc}") from None
    if info.duration_s < MIN_DURATION_S:
        raise IngestError(
            f"the video is too short ({info.duration_s:.1f} s); record the whole "
            "dose: the pill, putting it in the mouth, and swallowing"
        )
    if info.duration_s > settings.max_duration_s:
        raise IngestError(
            f"the video lasts {info.duration_s:.0f} s; the limit is "
            f"{settings.max_duration_s:.0f} s. Record a shorter clip."
        )
    if info.width * info.height > settings.max_pixels:
        raise IngestError(
            f"the picture is {info.width}x{info.height}, larger than allowed; "
            "record at a lower resolution"
        )
    return info.duration_s


def _existing(engine: Engine, patient_id: int, day: date, sha: str) -> Ingested | None:
    """The submission of this file for this dose, if it was received before."""
    subs = schema.submissions
    with engine.connect() as conn:
        found = conn.execute(
            select(subs.c.id, subs.c.status).where(
                subs.c.patient_id == patient_id,
                subs.c.dose_date == day,
                subs.c.content_sha256 == sha,
            )
        ).first()
    return Ingested(int(found[0]), False, day, found[1]) if found else None


@dataclass(frozen=True)
class _Received:
    patient_id: int
    day: date
    sha: str
    key: str
    size: int
    duration_s: float
    recorded_at: datetime | None
    filename: str


def _record(engine: Engine, got: _Received, actor: str) -> int:
    """Insert the submission row and its audit entry; its id.

    Raises:
        IntegrityError: the same file for the same dose was recorded meanwhile.
    """
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            schema.submissions.insert().values(
                patient_id=got.patient_id,
                dose_date=got.day,
                recorded_at=got.recorded_at.astimezone(UTC) if got.recorded_at else None,
                received_at=now,
                content_sha256=got.sha,
                size_bytes=got.size,
                duration_s=got.duration_s,
                original_filename=got.filename,
                raw_key=got.key,
                status=schema.RECEIVED,
                attempts=0,
                updated_at=now,
            )
        )
        sub_id = inserted_id(result)
        days.touch(conn, [(got.patient_id, got.day)])  # the day now holds a video
        audit(
            conn,
            actor,
            "submission.receive",
            f"submission:{sub_id}",
            dose_date=got.day.isoformat(),
            size_bytes=got.size,
        )
    return sub_id


def ingest_file(
    engine: Engine,
    storage: Storage,
    settings: Settings,
    patient_code: str,
    path: Path,
    *,
    dose_date: date | None = None,
    recorded_at: datetime | None = None,
    original_filename: str | None = None,
    actor: str = "cli",
    enqueue: Enqueue = no_queue,
) -> Ingested:
    """Store ``path`` as a received video for one dose of ``patient_code`` and queue it.

    The dose date is ``dose_date`` when given, else the recording time (else now) in the
    patient's time zone. A file already received for that dose is neither stored nor queued
    again; a new one is handed to ``enqueue``, and ``queued`` says whether it took it.

    Raises:
        IngestError: the patient is unknown, the file is unusable, or a limit is passed.
        vot.storage.StorageError: the store refused the file (nothing is recorded then).
    """
    path = Path(path)
    with engine.connect() as conn:
        try:
            patient = get_patient(conn, patient_code)
        except ValueError as exc:
            raise IngestError(str(exc)) from None
    duration = check_video(path, settings)
    sha = file_sha256(path)
    day = dose_date or dose_date_for(recorded_at, patient.timezone)
    existing = _existing(engine, patient.id, day, sha)
    if existing:
        return existing
    key = keys.raw(sha)
    # Store before recording: a row never points at bytes that are not there.
    storage.put_file(key, path, "video/octet-stream")
    name = (original_filename or path.name).replace("\x00", "")[:255]
    received = _Received(
        patient.id, day, sha, key, path.stat().st_size, duration, recorded_at, name
    )
    try:
        sub_id = _record(engine, received, actor)
    except IntegrityError:
        # Sent twice at the same moment: the other request recorded it first.
        existing = _existing(engine, patient.id, day, sha)
        if existing is None:
            raise
        return existing
    logger.info("received submission %s (%.1f s) for dose %s", sub_id, duration, day)
    return Ingested(sub_id, True, day, schema.RECEIVED, queued=enqueue(sub_id))
