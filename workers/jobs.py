"""The rq job functions. Each takes a submission id, never an object, and is safe to re-run.

An unusable file ends the submission as ``rejected`` with a reason (no retry can fix it). Any
other error (storage or database unavailable) is raised so rq retries with back-off; when the
retries are used up the reason is noted and the sweeper tries again later.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rq import Callback

from vot.config import Settings, load_settings
from vot.db import get_engine
from vot.intake.ingest import file_sha256
from vot.media import MediaError
from vot.pipeline import machine as pipeline
from vot.storage import Storage, StorageError, keys, open_storage
from workers.transcode.review_copy import make_review_copy

logger = logging.getLogger(__name__)


def _context() -> tuple[Settings, Storage]:
    settings = load_settings()
    return settings, open_storage(settings)


def _local_copy(storage: Storage, key: str, workdir: Path, name: str) -> Path:
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise StorageError(f"no object {key} in the store")
        return path
    dest = workdir / name
    storage.get_file(key, dest)
    return dest


def transcode(sub_id: int) -> str:
    """Make the review copy and poster of one submission, then hand it to scoring."""
    settings, storage = _context()
    engine = get_engine(settings)
    sub = pipeline.start_transcode(engine, sub_id)
    if sub is None:
        return "skipped: already past transcoding"
    with tempfile.TemporaryDirectory(prefix="vot-transcode-") as tmp:
        workdir = Path(tmp)
        raw = _local_copy(storage, sub.raw_key, workdir, "raw")
        if file_sha256(raw) != sub.content_sha256:
            # Raised, not rejected: a store that is eventually consistent may serve the right
            # bytes on a retry; after the last attempt the sweeper gives up with this reason.
            raise StorageError(f"the stored video of submission {sub_id} fails its checksum")
        try:
            review, poster = make_review_copy(raw, workdir, settings)
        except MediaError as exc:
            pipeline.reject_unusable(engine, sub_id, f"unusable video: {exc}")
            return f"rejected: {exc}"
        storage.put_file(keys.review_copy(sub_id), review, "video/mp4")
        if poster is not None:
            storage.put_file(keys.poster(sub_id), poster, "image/jpeg")
    pipeline.finish_transcode(
        engine, sub_id, keys.review_copy(sub_id), keys.poster(sub_id) if poster else None
    )
    return "transcoded"


def score(sub_id: int) -> str:
    """Score one submission's review copy and triage it into a band."""
    from workers.scoring.step import score_file  # MediaPipe is loaded only in scoring processes

    settings, storage = _context()
    engine = get_engine(settings)
    sub = pipeline.start_score(engine, sub_id)
    if sub is None or sub.review_key is None:
        return "skipped: not waiting for a score"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vot-score-") as tmp:
        video = _local_copy(storage, sub.review_key, Path(tmp), "review.mp4")
        try:
            scored = score_file(video, settings)
        except MediaError as exc:
            pipeline.reject_unusable(engine, sub_id, f"unusable video: {exc}")
            return f"rejected: {exc}"
    status = pipeline.record_score(
        engine, sub_id, scored, time.monotonic() - started, settings.replay_clinic_days
    )
    return f"scored: {status}"


def on_failure(job: Any, connection: Any, exc_type: Any, exc: Any, tb: Any) -> None:
    """Note the error on the submission once rq has no retries left for this job.

    rq calls this on every failed attempt, before deciding to retry.
    """
    if job.retries_left:
        return
    try:
        sub_id = int(job.args[0])
        settings = load_settings()
        pipeline.note_failure(get_engine(settings), sub_id, f"{exc_type.__name__}: {exc}")
    except Exception:  # a failing callback must not hide the job's own error
        logger.exception("could not record the failure of job %s", job.id)


FAILURE_CALLBACK = Callback(on_failure)


@dataclass(frozen=True)
class Processed:
    review: Path
    poster: Path | None
    score: dict[str, Any]


def process_video(raw: Path, workdir: Path, settings: Settings | None = None) -> Processed:
    """Transcode and score a local file as the two jobs do for one submission, without the
    database or the store (the pipeline benchmark); the score in its JSON form."""
    from workers.scoring.step import score_file

    settings = settings or load_settings()
    review, poster = make_review_copy(raw, workdir, settings)
    return Processed(review, poster, score_file(review, settings).to_dict())
