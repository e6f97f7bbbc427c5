"""Faults: workers killed mid-job, damaged stored bytes, a store that fails for a while.

Each scenario checks that the submission ends processed exactly once, or rejected with a reason,
and never stuck or lost.
"""

import os
import subprocess
import sys
import time
from datetime import date

import psutil
import pytest
from rq.job import Job
from sqlalchemy import select

from tests.conftest import clip, work
from vot import accounts, schema
from vot.ingest import ingest_file
from vot.storage import StorageError, open_storage
from workers.queue import enqueue_submission, sweep


@pytest.fixture
def env(settings, engine, redis, redis_url, monkeypatch):
    values = {
        "VOT_DATA_DIR": str(settings.data_dir),
        "VOT_DATABASE_URL": settings.database_url,
        "VOT_REDIS_URL": redis_url,
        "VOT_SECRET_KEY": settings.secret_key,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        accounts.add_patient(conn, "P-1", clinic, date(2026, 11, 1), "UTC")
    return settings.with_(redis_url=redis_url)


def row(engine, sub_id):
    with engine.connect() as conn:
        return conn.execute(
            select(schema.submissions).where(schema.submissions.c.id == sub_id)
        ).one()


def n_scores(engine, sub_id) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(schema.scores.c.id).where(schema.scores.c.submission_id == sub_id)
            ).all()
        )


def wait_for(predicate, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def kill_worker_when(env, engine, redis, sub_id, ready) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "vot.cli", "worker", "--no-sweep"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(ready)
        tree = [worker.pid, *(c.pid for c in psutil.Process(worker.pid).children(recursive=True))]
        for pid in tree:  # SIGKILL: no chance to clean up, as in a machine crash
            os.kill(pid, 9)
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.parametrize("stage", ["transcode", "score"])
def test_worker_killed_mid_job_is_processed_exactly_once(env, engine, redis, stage) -> None:
    sub_id = ingest_file(
        engine,
        open_storage(env),
        env,
        "P-1",
        clip("thumbsup_face.mp4"),
        dose_date=date(2026, 11, 10),
    ).submission_id
    enqueue_submission(redis, env, sub_id)

    expected = schema.TRANSCODING if stage == "transcode" else schema.SCORING

    def job_running() -> bool:
        try:
            started = Job.fetch(f"{stage}-{sub_id}", connection=redis).get_status() == "started"
        except Exception:
            return False
        return started and row(engine, sub_id).status == expected

    kill_worker_when(env, engine, redis, sub_id, job_running)
    assert row(engine, sub_id).status == expected
    # Another worker (or the same one restarted) with the sweeper picks it up.
    assert sweep(redis, env) == [sub_id]
    work()
    after = row(engine, sub_id)
    assert after.status in (schema.REVIEW, schema.AUTO_ACCEPTED), after.reason
    assert n_scores(engine, sub_id) == 1
    assert after.attempts == (2 if stage == "transcode" else 1)
    assert sweep(redis, env) == []  # nothing left to do


def test_damaged_stored_bytes_are_never_processed(env, engine, redis) -> None:
    storage = open_storage(env)
    sub_id = ingest_file(
        engine, storage, env, "P-1", clip("asl_thanks.mkv"), dose_date=date(2026, 11, 10)
    ).submission_id
    raw = storage.local_path(row(engine, sub_id).raw_key)
    raw.write_bytes(raw.read_bytes()[:-1000])  # a partial write that went unnoticed
    from workers import jobs

    with pytest.raises(StorageError, match="fails its checksum"):
        jobs.transcode(sub_id)
    assert row(engine, sub_id).status == schema.TRANSCODING
    assert row(engine, sub_id).review_key is None and n_scores(engine, sub_id) == 0


def test_store_down_while_processing_then_back(env, engine, redis, tmp_path) -> None:
    """The store fails (here: the raw object vanishes from under the worker); rq retries."""
    storage = open_storage(env)
    sub_id = ingest_file(
        engine, storage, env, "P-1", clip("asl_thanks.mkv"), dose_date=date(2026, 11, 10)
    ).submission_id
    raw = storage.local_path(row(engine, sub_id).raw_key)
    held = tmp_path / "held"
    raw.rename(held)
    from workers import jobs

    with pytest.raises(StorageError, match="no object raw/"):
        jobs.transcode(sub_id)
    assert row(engine, sub_id).status == schema.TRANSCODING  # not rejected: it may come back
    held.rename(raw)
    assert jobs.transcode(sub_id) == "transcoded"
    assert sweep(redis, env) == [sub_id]  # its score job was never queued: the sweeper does it
    work()
    assert n_scores(engine, sub_id) == 1
