"""``vot demo``: a demo clinic whose patients' videos go through the real queue and workers.

Everything is keyed so a second run finds what the first made: the clinic, the supervisor, the
patients and each (patient, dose day, file) submission exist once however often it runs.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from vot import accounts, schema
from vot.adherence import rules as adherence
from vot.config import REPO_ROOT, Settings
from vot.db import get_engine
from vot.intake.ingest import IngestError
from vot.storage import open_storage

DEMO_CLINIC = "Demo Clinic"
DEMO_DISTRICT = "Demo District"
DEMO_SUPERVISOR = "demo-supervisor"
DEMO_PATIENTS = (
    ("DEMO-001", "Asia/Shanghai"),
    ("DEMO-002", "Asia/Shanghai"),
    ("DEMO-003", "UTC"),
    ("DEMO-004", "America/New_York"),
)
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".m4v", ".3gp", ".avi"}
SHARED_CLIPS = REPO_ROOT.parent / "shared" / "data" / "clips"
SAMPLE_CLIPS = REPO_ROOT / "sample_videos"


@dataclass
class DemoResult:
    password: str
    password_generated: bool
    submission_ids: list[int]
    new_submissions: int
    clips_dir: Path
    wall_s: float


def demo_clips(folder: Path | None = None) -> tuple[Path, list[Path]]:
    """The clips the demo submits: ``folder``, else the shared real clips, else the samples."""
    for candidate in (folder,) if folder else (SHARED_CLIPS, SAMPLE_CLIPS):
        clips = sorted(p for p in candidate.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if clips:
            return candidate, clips
    raise RuntimeError(f"no demo clips in {folder or f'{SHARED_CLIPS} or {SAMPLE_CLIPS}'}")


def seed(engine: Engine, settings: Settings, days: int) -> tuple[str, bool, dict[str, date]]:
    """Create the clinic, supervisor and patients; returns (password, generated, starts).

    A new patient's regimen starts ``days - 1`` days before today in their time zone, so their
    last demo video is today's dose; an existing patient keeps the start it has.
    """
    password = settings.demo_password or secrets.token_urlsafe(12)
    starts: dict[str, date] = {}
    with engine.begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, DEMO_CLINIC, DEMO_DISTRICT)
        accounts.ensure_user(conn, DEMO_SUPERVISOR, password, "supervisor", clinic_id)
        for code, tz in DEMO_PATIENTS:
            start = adherence.patient_today(tz) - timedelta(days=days - 1)
            patient, _created = accounts.add_patient(conn, code, clinic_id, start, tz)
            starts[code] = (
                conn.execute(
                    select(schema.regimens.c.start_date)
                    .where(schema.regimens.c.patient_id == patient.id)
                    .order_by(schema.regimens.c.start_date)
                )
                .scalars()
                .one()
            )
    return password, settings.demo_password is None, starts


def wait_until_processed(
    engine: Engine, ids: list[int], timeout_s: float, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Block until no submission in ``ids`` is still processing.

    Raises:
        RuntimeError: the time ran out or every worker died.
    """
    s = schema.submissions
    deadline = time.monotonic() + timeout_s
    while True:
        with engine.connect() as conn:
            pending = (
                conn.execute(
                    select(s.c.id).where(
                        s.c.id.in_(ids), s.c.status.in_(schema.PROCESSING_STATUSES)
                    )
                )
                .scalars()
                .all()
            )
        if not pending:
            return
        if procs and all(p.poll() is not None for p in procs):
            raise RuntimeError("every demo worker exited; see the log above")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(pending)} demo video(s) still processing after {timeout_s:.0f} s: {pending}"
            )
        time.sleep(0.5)


def worker_log(settings: Settings) -> Path:
    return settings.data_dir / "logs" / "demo-workers.log"


def _submit_clips(
    engine: Engine, settings: Settings, clips: list[Path], starts: dict[str, date]
) -> tuple[list[int], int]:
    """Submit each clip as one dose of a demo patient, in turn; returns (ids, how many new)."""
    from vot.intake.ingest import ingest_file
    from workers.queue import enqueuer

    storage, enqueue = open_storage(settings), enqueuer(settings)
    codes = sorted(starts)
    ids, new = [], 0
    for i, clip in enumerate(clips):
        code = codes[i % len(codes)]
        day = starts[code] + timedelta(days=i // len(codes))
        try:
            got = ingest_file(
                engine, storage, settings, code, clip, dose_date=day, actor="demo", enqueue=enqueue
            )
        except IngestError as exc:
            print(f"  skipped {clip.name}: {exc}")
            continue
        ids.append(got.submission_id)
        new += got.created
    return ids, new


def run_demo(
    settings: Settings, workers: int = 2, timeout_s: float = 900.0, clips_dir: Path | None = None
) -> DemoResult:
    """Seed the demo clinic, submit the clips through the queue and wait for the workers."""
    from vot.app.embedded_redis import queue_running
    from vot.app.serve import spawn_workers, stop_processes
    from vot.migrations import upgrade
    from workers.queue import connect
    from workers.sweeper import sweep

    started = time.monotonic()
    engine = get_engine(settings)
    upgrade(engine)
    folder, clips = demo_clips(clips_dir)
    per_patient = -(-len(clips) // len(DEMO_PATIENTS))
    password, generated, starts = seed(engine, settings, per_patient)
    with queue_running(settings) as settings:
        assert settings.redis_url is not None
        procs: list[subprocess.Popen[bytes]] = []
        try:
            ids, new = _submit_clips(engine, settings, clips, starts)
            sweep(connect(settings.redis_url), settings)  # what a stopped run left half-done
            # The workers' own logs (and MediaPipe's) would drown the report; they go to a file.
            procs = spawn_workers(workers, settings.redis_url, log=worker_log(settings))
            wait_until_processed(engine, ids, timeout_s, procs)
        finally:
            stop_processes(procs)
    return DemoResult(password, generated, ids, new, folder, time.monotonic() - started)
