"""The pipeline end to end: real Redis, a real rq worker forking real jobs, real ffmpeg and
MediaPipe on the real clips."""

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import big_video, clip, header_only, video, work
from vot import accounts, schema
from vot.intake.ingest import ingest_file
from vot.pipeline import machine as pipeline
from vot.storage import open_storage
from workers import jobs
from workers.queue import enqueue_submission
from workers.sweeper import sweep


@pytest.fixture
def env(settings, engine, redis, redis_url, monkeypatch):
    """Settings whose jobs, run in forked work-horses, find the same database and store."""
    monkeypatch.setenv("VOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VOT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VOT_REDIS_URL", redis_url)
    monkeypatch.setenv("VOT_SECRET_KEY", settings.secret_key)
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        accounts.add_patient(conn, "P-1", clinic, date(2026, 11, 1), "UTC")
    return settings.with_(redis_url=redis_url)


def submit(env, engine, path: Path, day: date = date(2026, 11, 10)) -> int:
    return ingest_file(engine, open_storage(env), env, "P-1", path, dose_date=day).submission_id


def status_of(engine, sub_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.submissions.c.status, schema.submissions.c.reason).where(
                schema.submissions.c.id == sub_id
            )
        ).one()
    return row.status, row.reason


def scores_of(engine, sub_id: int) -> list:
    with engine.connect() as conn:
        return conn.execute(
            select(schema.scores).where(schema.scores.c.submission_id == sub_id)
        ).all()


def test_clip_goes_through_queue_and_workers_to_the_review_queue(env, engine, redis) -> None:
    sub_id = submit(env, engine, clip("asl_eat.mkv"))
    enqueue_submission(redis, env, sub_id)
    work()
    status, reason = status_of(engine, sub_id)
    assert status in (schema.REVIEW, schema.AUTO_ACCEPTED), reason
    (score,) = scores_of(engine, sub_id)
    assert 0.0 <= score.confidence <= 1.0
    assert score.model_version and score.threshold_version == "v1"
    assert any(e["type"] == "hand_to_mouth" for e in score.events)
    storage = open_storage(env)
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.submissions).where(schema.submissions.c.id == sub_id)
        ).one()
    assert storage.exists(row.review_key) and storage.exists(row.poster_key)
    # Running both jobs again (a retry, a re-queue after a crash) changes nothing.
    assert jobs.transcode(sub_id).startswith("skipped")
    assert jobs.score(sub_id).startswith("skipped")
    assert len(scores_of(engine, sub_id)) == 1


def test_undecodable_file_is_rejected_with_a_reason_and_others_go_on(
    env, engine, redis, tmp_path: Path
) -> None:
    # The moov atom is at the front, so the file probes fine, but most frames are missing.
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(header_only(big_video()))
    bad = submit(env, engine, broken)
    good = submit(env, engine, video())
    for sub_id in (bad, good):
        enqueue_submission(redis, env, sub_id)
    work()
    status, reason = status_of(engine, bad)
    assert status == schema.REJECTED and reason and reason.startswith("unusable video")
    assert status_of(engine, good)[0] in (schema.REVIEW, schema.AUTO_ACCEPTED)


def test_sweeper_requeues_work_lost_with_redis(env, engine, redis) -> None:
    sub_id = submit(env, engine, video())
    enqueue_submission(redis, env, sub_id)
    redis.flushdb()  # Redis restarted without its data: the job is gone, the row is not
    assert sweep(redis, env) == [sub_id]
    assert sweep(redis, env) == []  # its job is queued now: nothing more to do
    work()
    assert status_of(engine, sub_id)[0] in (schema.REVIEW, schema.AUTO_ACCEPTED)


def test_sweeper_resumes_at_the_stage_reached(env, engine, redis) -> None:
    sub_id = submit(env, engine, video())
    jobs.transcode(sub_id)  # transcoded, then the worker died before scoring was queued
    assert status_of(engine, sub_id)[0] == schema.SCORING
    assert sweep(redis, env) == [sub_id]
    assert redis.exists(f"rq:job:score-{sub_id}") and not redis.exists(f"rq:job:transcode-{sub_id}")
    work()
    assert len(scores_of(engine, sub_id)) == 1


def test_submission_that_keeps_failing_is_given_up_with_its_reason(env, engine, redis) -> None:
    sub_id = submit(env, engine, video())
    with engine.begin() as conn:
        conn.execute(
            schema.submissions.update()
            .where(schema.submissions.c.id == sub_id)
            .values(
                status=schema.TRANSCODING,
                attempts=pipeline.MAX_ATTEMPTS,
                reason="retrying: StorageError: disk full",
            )
        )
    assert sweep(redis, env, older_than_s=0) == []
    status, reason = status_of(engine, sub_id)
    assert status == schema.REJECTED
    assert "after 5 attempts" in reason and "disk full" in reason
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(schema.audit_log)
                .where(schema.audit_log.c.action == "submission.unusable")
            ).scalar_one()
            == 1
        )
