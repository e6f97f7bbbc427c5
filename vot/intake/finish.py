"""Finishing a complete upload: hand its bytes to ingest, once, and record the submission."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from sqlalchemy import Engine, select

from vot import schema
from vot.accounts import Patient
from vot.config import Settings
from vot.db import utcnow
from vot.intake.ingest import Enqueue, Ingested, IngestError, ingest_file, no_queue
from vot.intake.uploads import Refused, Upload, UploadError, get, locked, part_path
from vot.media import MediaError, ffmpeg_exe, probe
from vot.storage import Storage

logger = logging.getLogger(__name__)
u = schema.uploads


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
    engine: Engine,
    storage: Storage,
    settings: Settings,
    patient: Patient,
    upload_id: str,
    enqueue: Enqueue = no_queue,
) -> Ingested:
    """Ingest and queue a complete upload (once: later calls return the same submission).

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
    with locked(path):
        up = get(engine, patient.id, upload_id)
        if up.finished:
            return finish(engine, storage, settings, patient, upload_id, enqueue)
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
                enqueue=enqueue,
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
