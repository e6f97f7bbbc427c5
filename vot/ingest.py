"""Take in one video for one dose: check it, store it as received, record the submission.

Every way in (``vot submit``, the web upload) goes through :func:`ingest_file`. The file is
checked by probing its content, never by its name. The same file for the same dose is one
submission, however often it is sent.
"""

from __future__ import annotations

import hashlib
import logging
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
from vot.storage import Storage

logger = logging.getLogger(__name__)

MIN_DURATION_S = 1.0  # shorter cannot show a dose being taken (and catches single images)


class IngestError(ValueError):
    """The video was refused; the message says why in words the sender can act on."""


@dataclass(frozen=True)
class Ingested:
    submission_id: int
    created: bool  # False when this file had already been received for this dose
    dose_date: date
    status: str


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


def raw_key(sha256: str) -> str:
    """Storage key of a raw upload: content-addressed, so a retried store is harmless."""
    return f"raw/{sha256[:2]}/{sha256}"


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
) -> Ingested:
    """Store ``path`` as a received video for one dose of ``patient_code``.

    The dose date is ``dose_date`` when given, else the recording time (else now) in the
    patient's time zone. The caller queues the returned submission for processing.

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
    subs = schema.submissions
    existing_q = select(subs.c.id, subs.c.status).where(
        subs.c.patient_id == patient.id, subs.c.dose_date == day, subs.c.content_sha256 == sha
    )
    with engine.connect() as conn:
        existing = conn.execute(existing_q).first()
    if existing:
        return Ingested(int(existing[0]), False, day, existing[1])
    key = raw_key(sha)
    # Store before recording: a row never points at bytes that are not there.
    storage.put_file(key, path, "video/octet-stream")
    name = (original_filename or path.name).replace("\x00", "")[:255]
    now = utcnow()
    try:
        with engine.begin() as conn:
            result = conn.execute(
                subs.insert().values(
                    patient_id=patient.id,
                    dose_date=day,
                    recorded_at=recorded_at.astimezone(UTC) if recorded_at else None,
                    received_at=now,
                    content_sha256=sha,
                    size_bytes=path.stat().st_size,
                    duration_s=duration,
                    original_filename=name,
                    raw_key=key,
                    status=schema.RECEIVED,
                    attempts=0,
                    updated_at=now,
                )
            )
            sub_id = inserted_id(result)
            audit(
                conn,
                actor,
                "submission.receive",
                f"submission:{sub_id}",
                dose_date=day.isoformat(),
                size_bytes=path.stat().st_size,
            )
    except IntegrityError:
        # Sent twice at the same moment: the other request recorded it first.
        with engine.connect() as conn:
            existing = conn.execute(existing_q).first()
        if existing is None:
            raise
        return Ingested(int(existing[0]), False, day, existing[1])
    logger.info("received submission %s (%.1f s) for dose %s", sub_id, duration, day)
    return Ingested(sub_id, True, day, schema.RECEIVED)
