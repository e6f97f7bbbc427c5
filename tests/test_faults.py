"""Faults: workers killed mid-job, damaged stored bytes, a store that fails for a while.

Each scenario checks that the submission ends processed exactly once, or rejected with a reason,
and never stuck or lost.
"""

import hashlib
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import psutil
import pytest
from rq.job import Job
from sqlalchemy import select

from tests.conftest import big_video, clip, video, work
from vot import accounts, schema
from vot.children import kill_tree
from vot.intake.ingest import ingest_file
from vot.storage import StorageError, open_storage
from workers.queue import enqueue_submission
from workers.sweeper import sweep


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
        [sys.executable, "-m", "vot.app.cli", "worker", "--no-sweep"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(ready)
        # SIGKILL to the worker and all below it: no chance to clean up, as in a machine crash.
        kill_tree(worker.pid)
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
        engine, storage, env, "P-1", video(), dose_date=date(2026, 11, 10)
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
        engine, storage, env, "P-1", video(), dose_date=date(2026, 11, 10)
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


# ---- The store failing while a worker processes: S3 (moto's server, over HTTP) goes away. ----


@pytest.fixture
def s3_env(env, monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    values = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "VOT_STORAGE_URL": "s3://vot-faults/clinic-a",
        "VOT_S3_ENDPOINT_URL": f"http://{host}:{port}",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = env.with_(
        storage_url=values["VOT_STORAGE_URL"], s3_endpoint_url=f"http://{host}:{port}"
    )
    open_storage(settings).client.create_bucket(Bucket="vot-faults")  # type: ignore[attr-defined]
    holder = {"server": server, "port": port}
    yield settings, holder
    holder["server"].stop()


def test_s3_down_during_processing_then_back_is_scored_once(s3_env, engine, redis) -> None:
    from moto.server import ThreadedMotoServer

    settings, holder = s3_env
    sub_id = ingest_file(
        engine,
        open_storage(settings),
        settings,
        "P-1",
        clip("thumbsup_face.mp4"),
        dose_date=date(2026, 11, 10),
    ).submission_id
    enqueue_submission(redis, settings, sub_id)
    worker = subprocess.Popen(
        [sys.executable, "-m", "vot.app.cli", "worker", "--no-sweep"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    jobs_ = [f"transcode-{sub_id}", f"score-{sub_id}"]

    def states() -> list[str]:
        return [Job.fetch(j, connection=redis).get_status() for j in jobs_]

    try:
        wait_for(lambda: states()[0] == "started")
        holder["server"].stop()  # the store goes away while the job runs
        wait_for(lambda: "scheduled" in states(), timeout_s=180)
        after = row(engine, sub_id)
        assert after.status in (schema.TRANSCODING, schema.SCORING)  # waiting, not rejected
        assert n_scores(engine, sub_id) == 0
        raised = Job.fetch(jobs_[states().index("scheduled")], connection=redis)
        assert raised.retries_left < 3  # it raised, and rq will try it again
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=holder["port"])
        server.start()  # the store is back, with its objects; rq's retry picks the job up
        holder["server"] = server
        wait_for(
            lambda: row(engine, sub_id).status in (schema.REVIEW, schema.AUTO_ACCEPTED),
            timeout_s=300,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert n_scores(engine, sub_id) == 1
    assert open_storage(settings).exists(row(engine, sub_id).review_key)


# ---- The disk fills up under an upload, and under the store. ----


@pytest.fixture
def site(env, engine, redis_url):
    from tests.test_bad_input import serve
    from vot import tokens
    from vot.app.serve import web_app

    with engine.begin() as conn:
        token = tokens.link_token(conn, env.secret_key, "P-1")
    for base in serve(web_app(env)):
        yield base, token


def test_disk_full_during_an_upload_is_refused_then_resumed(site, env, engine) -> None:
    """A real write limit (RLIMIT_FSIZE, EFBIG) hits the upload's file mid-piece."""
    import resource

    import requests

    from tests.test_bad_input import PIECE, bearer, refused
    from vot.intake import uploads

    base, token = site
    data = big_video().read_bytes()
    created = requests.post(
        base + "/api/v1/uploads", headers={**bearer(token), "Upload-Length": str(len(data))}
    )
    url = base + created.headers["Location"]
    piece = 256 * 1024  # below waitress's in-memory limit: only the upload's own file grows

    def put(start: int) -> requests.Response:
        return requests.patch(
            url,
            data=data[start : start + piece],
            headers={**bearer(token), **PIECE, "Upload-Offset": str(start)},
            timeout=30,
        )

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, hard))
    try:
        offset = 0
        while (reply := put(offset)).status_code == 204:
            offset = int(reply.headers["Upload-Offset"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    refused(reply, 503, "could not store the video now")
    part = uploads.part_path(env, created.headers["Location"].rsplit("/", 1)[1])
    head = requests.head(url, headers=bearer(token), timeout=10)
    # The blocks written before the disk filled count; the one that failed left nothing.
    assert offset <= int(head.headers["Upload-Offset"]) == part.stat().st_size <= 1_000_000
    offset = part.stat().st_size
    while offset < len(data):  # room again: the client resumes where the server stands
        reply = put(offset)
        assert reply.status_code == 204, reply.text
        offset = int(reply.headers["Upload-Offset"])
    sub_id = int(reply.headers["Vot-Submission-Id"])
    assert row(engine, sub_id).content_sha256 == hashlib.sha256(data).hexdigest()


def test_disk_full_while_storing_a_finished_upload(site, env, engine, monkeypatch) -> None:
    """The store's write fails half way (ENOSPC): no partial object, the upload is kept."""
    import errno
    import shutil

    import requests

    from tests.test_bad_input import PIECE, bearer, refused
    from vot import storage as storage_module

    base, token = site
    data = video().read_bytes()

    def half_then_full(src, dst, length=0) -> None:  # type: ignore[no-untyped-def]
        dst.write(src.read(len(data) // 2))
        raise OSError(errno.ENOSPC, "No space left on device")

    real_copy = shutil.copyfileobj
    monkeypatch.setattr(storage_module.shutil, "copyfileobj", half_then_full)
    created = requests.post(
        base + "/api/v1/uploads", headers={**bearer(token), "Upload-Length": str(len(data))}
    )
    url = base + created.headers["Location"]
    reply = requests.patch(
        url, data=data, headers={**bearer(token), **PIECE, "Upload-Offset": "0"}, timeout=30
    )
    refused(reply, 503, "will be sent again")
    root = Path(env.storage_url.removeprefix("file://"))
    assert [p for p in root.rglob("*") if p.is_file()] == []  # no partial object anywhere
    with engine.connect() as conn:
        assert conn.execute(select(schema.submissions.c.id)).first() is None
    monkeypatch.setattr(storage_module.shutil, "copyfileobj", real_copy)  # room again
    # The bytes were kept: asking where the upload stands finishes it.
    state = requests.get(url, headers=bearer(token), timeout=30)
    assert state.status_code == 200 and state.json()["submission_id"], state.text
    sub = row(engine, state.json()["submission_id"])
    assert sub.content_sha256 == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256((root / sub.raw_key).read_bytes()).hexdigest() == sub.content_sha256


# ---- ffmpeg hanging, and a decode bomb, through the real job path. ----


def test_hanging_ffmpeg_is_stopped_and_the_submission_rejected(
    env, engine, redis, tmp_path, monkeypatch
) -> None:
    from vot.media import ffmpeg_exe

    fake = tmp_path / "ffmpeg"  # probes (-i FILE, no output) answer; writing anything hangs
    fake.write_text(
        f"#!{sys.executable}\nimport os, sys\nargs = sys.argv[1:]\n"
        f"if args[-2:-1] == ['-i']: os.execv({ffmpeg_exe()!r}, [{ffmpeg_exe()!r}, *args])\n"
        "os.execvp('sleep', ['sleep', '987'])\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("VOT_FFMPEG", str(fake))
    monkeypatch.setenv("VOT_TRANSCODE_TIMEOUT_S", "2")
    sub_id = ingest_file(
        engine, open_storage(env), env, "P-1", video(), dose_date=date(2026, 11, 10)
    ).submission_id
    enqueue_submission(redis, env, sub_id)
    work()
    after = row(engine, sub_id)
    assert after.status == schema.REJECTED and "took longer than 2 s" in after.reason
    assert n_scores(engine, sub_id) == 0
    hung = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "987"]]
    assert hung == []  # the hung ffmpeg was killed, not left behind


def test_decode_bomb_is_stopped_by_the_memory_cap(env, engine, redis, tmp_path, monkeypatch):
    """An 8K picture in a 100 kB file, let in by a generous pixel limit; the cap stops it."""
    from vot.media import ffmpeg_exe
    from workers import jobs

    bomb = tmp_path / "bomb.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "color=size=7680x4320:rate=2"]
        + ["-t", "2", "-c:v", "libx264", "-preset", "ultrafast", str(bomb)],
        check=True,
        timeout=120,
    )
    assert bomb.stat().st_size < 500_000
    monkeypatch.setenv("VOT_MAX_PIXELS", str(7680 * 4320))
    settings = env.with_(max_pixels=7680 * 4320)
    sub_id = ingest_file(
        engine, open_storage(settings), settings, "P-1", bomb, dose_date=date(2026, 11, 10)
    ).submission_id
    # A cap a decoder of 8K frames cannot fit in (the default, 3 GB, is sized for the host).
    monkeypatch.setenv("VOT_TRANSCODE_MEMORY_MB", "150")
    assert jobs.transcode(sub_id).startswith("rejected")
    after = row(engine, sub_id)
    assert after.status == schema.REJECTED and "more than 150 MB of memory" in after.reason
    assert after.review_key is None and n_scores(engine, sub_id) == 0
