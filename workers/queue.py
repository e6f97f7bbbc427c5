"""Queue names, enqueueing a submission's jobs, and the sweeper that re-queues lost work.

The database says what still needs doing; Redis only carries the work. The sweeper compares the
two: a submission still processing whose job is gone (Redis flushed or restarted), failed for
good, or held by a worker that no longer exists is queued again under the same job id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from datetime import UTC, datetime

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from vot import pipeline
from vot.config import Settings
from vot.db import get_engine

logger = logging.getLogger(__name__)

QUEUE_TRANSCODE = "vot-transcode"
QUEUE_SCORE = "vot-score"
# A worker drains scoring before starting new transcodes, so videos finish rather than pile up.
WORKER_QUEUES = (QUEUE_SCORE, QUEUE_TRANSCODE)
RETRY = Retry(max=3, interval=[10, 30, 60])
# rq's worker heartbeats every job_monitoring_interval (30 s) while a job runs.
HEARTBEAT_GRACE_S = 120
# A deferred job waits on another; for the stage a submission is at, only these make progress.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED}


def job_id(stage: str, sub_id: int) -> str:
    return f"{stage}-{sub_id}"


def connect(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def enqueue_submission(
    redis: Redis, settings: Settings, sub_id: int, stage: str = pipeline.TRANSCODE
) -> None:
    """Queue the remaining jobs of one submission, from ``stage`` on."""
    from workers import jobs  # the job functions import heavier modules

    score_queue = Queue(QUEUE_SCORE, connection=redis)
    common = {
        "retry": RETRY,
        "on_failure": jobs.FAILURE_CALLBACK,
        "result_ttl": 3600,
        "failure_ttl": 7 * 86400,
    }
    if stage == pipeline.TRANSCODE:
        transcode_job = Queue(QUEUE_TRANSCODE, connection=redis).enqueue(
            jobs.transcode,
            sub_id,
            job_id=job_id(pipeline.TRANSCODE, sub_id),
            job_timeout=settings.transcode_timeout_s + 60,
            **common,
        )
        score_queue.enqueue(
            jobs.score,
            sub_id,
            job_id=job_id(pipeline.SCORE, sub_id),
            depends_on=transcode_job,
            job_timeout=settings.job_timeout_s,
            **common,
        )
    else:
        score_queue.enqueue(
            jobs.score,
            sub_id,
            job_id=job_id(pipeline.SCORE, sub_id),
            job_timeout=settings.job_timeout_s,
            **common,
        )


def worker_alive(redis: Redis, name: str) -> bool:
    """Whether the rq worker ``name`` is still running.

    A worker killed with SIGKILL leaves its registration (and its job "started") in Redis until
    its key expires. On this host its process id answers at once; elsewhere a heartbeat older
    than :data:`HEARTBEAT_GRACE_S` means it is gone.
    """
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=redis)
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid:
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
    beat = worker.last_heartbeat
    if beat is not None:
        age = (datetime.now(UTC) - beat.replace(tzinfo=beat.tzinfo or UTC)).total_seconds()
        return age < HEARTBEAT_GRACE_S
    return True


def _job_alive(redis: Redis, jid: str) -> bool:
    try:
        job = Job.fetch(jid, connection=redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=True)
    if status not in _LIVE:
        return False
    if status == JobStatus.STARTED and job.worker_name:
        return worker_alive(redis, job.worker_name)
    return True


def sweep(redis: Redis, settings: Settings, older_than_s: float | None = None) -> list[int]:
    """Re-queue every processing submission whose job was lost; returns their ids.

    A submission that has used up its attempts is rejected with the last recorded reason.
    """
    engine = get_engine(settings)
    requeued = []
    older = settings.stale_after_s if older_than_s is None else older_than_s
    for sub in pipeline.in_processing(engine, older_than_s=0):
        stage = pipeline.STAGE_OF_STATUS[sub.status]
        if _job_alive(redis, job_id(stage, sub.id)):
            continue
        stale = (pipeline.utcnow() - sub.updated_at).total_seconds() >= older
        if sub.attempts >= pipeline.MAX_ATTEMPTS and stale:
            pipeline.reject_unusable(
                engine,
                sub.id,
                (
                    f"could not be processed after {sub.attempts} attempts"
                    + (f" ({sub.reason})" if sub.reason else "")
                ),
            )
            continue
        for stale_stage in (pipeline.TRANSCODE, pipeline.SCORE):
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id(stale_stage, sub.id), connection=redis).delete()
        enqueue_submission(redis, settings, sub.id, stage)
        logger.info("sweeper re-queued submission %s at %s", sub.id, stage)
        requeued.append(sub.id)
    return requeued
