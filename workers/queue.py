"""The queue: where Redis is, queue names and job ids, and queueing a submission's jobs.

The database says what still needs doing; Redis only carries the work (the sweeper in
:mod:`workers.sweeper` re-queues what Redis lost). :func:`enqueuer` is what the entry layer
hands to the core and the web app, so neither needs to know about rq.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path

import redis
from redis import Redis
from rq import Queue, Retry

from vot.config import Settings
from vot.intake.ingest import Enqueue
from vot.pipeline import machine as pipeline

logger = logging.getLogger(__name__)

QUEUE_TRANSCODE = "vot-transcode"
QUEUE_SCORE = "vot-score"
# A worker drains scoring before starting new transcodes, so videos finish rather than pile up.
WORKER_QUEUES = (QUEUE_SCORE, QUEUE_TRANSCODE)
RETRY = Retry(max=3, interval=[10, 30, 60])
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


def socket_path(settings: Settings) -> Path:
    """Where the embedded server listens; a short path in /tmp if the data folder is too deep."""
    path = settings.data_dir / "redis" / "redis.sock"
    if len(str(path)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"vot-redis-{digest}.sock"
    return path


def embedded_url(settings: Settings) -> str:
    return f"unix://{socket_path(settings)}"


def queue_url(settings: Settings) -> str:
    """The Redis URL the queue uses: the configured one or the embedded server's."""
    return settings.redis_url or embedded_url(settings)


def is_up(url: str) -> bool:
    """Whether a Redis answers at ``url`` right now."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def wait_for_redis(url: str, timeout_s: float = 30.0) -> None:
    """Block until Redis answers at ``url``.

    Raises:
        RuntimeError: it did not answer in time (the message names the URL to check).
    """
    deadline = time.monotonic() + timeout_s
    while not is_up(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no Redis answers at {url}; start `vot serve` or set VOT_REDIS_URL")
        time.sleep(0.5)


def connect(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def job_id(stage: str, sub_id: int) -> str:
    return f"{stage}-{sub_id}"


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
    transcode_job = None
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


def enqueuer(settings: Settings) -> Enqueue:
    """Queue a new submission's jobs when a queue runs; see :data:`vot.intake.ingest.Enqueue`.

    A Redis that is down or answers with an error is logged, not raised: the video is stored
    and recorded already, and the sweeper queues it once Redis is back.
    """
    url = queue_url(settings)

    def enqueue(sub_id: int) -> bool:
        try:
            if not is_up(url):
                return False
            enqueue_submission(connect(url), settings, sub_id)
        except redis.RedisError as exc:
            logger.warning("submission %s not queued: %s; the sweeper will", sub_id, exc)
            return False
        return True

    return enqueue
