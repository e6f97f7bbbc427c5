"""How fast the review queue page is with a big clinic: ``python -m bench.bench_queue``.

Builds one clinic with ``--waiting`` videos waiting for a person and ``--past`` decided ones
(scores, reviews), by INSERT ... SELECT over a number series, then times ``GET /review`` through
Flask's test client as the clinic's supervisor. Prints one JSON object; asserts no timing.

    python -m bench.bench_queue --waiting 10000 --past 1000000
    python -m bench.bench_queue --database-url postgresql://postgres@127.0.0.1:5432/vot_bench
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from vot import accounts, schema
from vot.config import REPO_ROOT, Settings, load_settings
from vot.db import get_engine, utcnow
from vot.migrations import upgrade

SUPERVISOR, PASSWORD = "bench-supervisor", "bench-password-1"
REGIMEN_DAYS = 180

# Dialect pieces of the bulk inserts: a series of n, a day offset, a timestamp, JSON text.
SERIES = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
    "WHERE i + 1 < :count) SELECT {cols} FROM n",
    "postgresql": "SELECT {cols} FROM generate_series(0, :count - 1) AS n(i)",
}
DAY = {
    "sqlite": "date(:start, '+' || ({offset}) || ' days')",
    "postgresql": "(CAST(:start AS date) + ({offset}))",
}
NOON = {
    "sqlite": "(datetime({day}, '+12 hours') || '.000000')",
    "postgresql": "({day} + interval '12 hours')",
}
JSON = {"sqlite": "{value}", "postgresql": "CAST({value} AS json)"}
PAST_STATUS = (
    "CASE WHEN i % 20 < 12 THEN 'auto_accepted' WHEN i % 20 < 17 THEN 'accepted' "
    "WHEN i % 20 < 19 THEN 'rejected' ELSE 'unclear' END"
)
REASONS = (
    'CASE id % 4 WHEN 0 THEN \'["uncertain"]\' WHEN 1 THEN \'["too_dark", "uncertain"]\' '
    "WHEN 2 THEN '[\"low_confidence\"]' ELSE '[\"face_cut_off\"]' END"
)
EVENTS = '\'[{"type": "hand_to_mouth", "start_s": 1.0, "end_s": 2.0, "score": 0.6}]\''


def bench_settings(database_url: str | None, data_dir: Path) -> Settings:
    env = {"VOT_DATA_DIR": str(data_dir), "VOT_SECRET_KEY": "bench-secret"}
    if database_url:
        env["VOT_DATABASE_URL"] = database_url
    return load_settings(env)


def fresh_database(settings: Settings) -> None:
    """Start from an empty database: delete the SQLite file, or re-create the PostgreSQL one."""
    path = settings.sqlite_path
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    url = make_url(settings.database_url)
    if not re.fullmatch(r"vot_bench\w*", url.database or ""):
        raise SystemExit(f"refusing to re-create database {url.database!r}: name it vot_bench")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def insert_series(engine: Engine, table: str, columns: str, values: str, **params: Any) -> None:
    sql = f"INSERT INTO {table} ({columns}) " + SERIES[engine.dialect.name].format(cols=values)
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def build(engine: Engine, waiting: int, past: int) -> dict[str, float]:
    """Fill the database; returns seconds per step."""
    d = engine.dialect.name
    timings, started = {}, time.perf_counter()
    today = utcnow().date()
    patients = max(1, math.ceil(past / REGIMEN_DAYS))
    start = today - timedelta(days=REGIMEN_DAYS + 20)
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Bench Clinic")
        reviewer, _ = accounts.ensure_user(conn, SUPERVISOR, PASSWORD, "supervisor", clinic)
        now = utcnow()
        conn.execute(
            schema.patients.insert(),
            [
                dict(
                    code=f"B-{n:06d}",
                    clinic_id=clinic,
                    timezone="UTC",
                    pseudonym=f"P-B{n:06d}",
                    created_at=now,
                )
                for n in range(patients)
            ],
        )
        first = conn.execute(select(func.min(schema.patients.c.id))).scalar_one()
        conn.execute(
            schema.regimens.insert(),
            [
                dict(
                    patient_id=first + n,
                    start_date=start,
                    length_days=REGIMEN_DAYS,
                    doses_per_day=1,
                    days_per_week=7,
                    created_at=now,
                )
                for n in range(patients)
            ],
        )
    timings["patients_s"] = time.perf_counter() - started
    cols = (
        "patient_id, dose_date, received_at, content_sha256, size_bytes, duration_s, "
        "original_filename, raw_key, review_key, poster_key, status, attempts, updated_at"
    )
    past_day = DAY[d].format(offset=f"(i / {patients}) % {REGIMEN_DAYS}")
    insert_series(
        engine,
        "submissions",
        cols,
        (
            f"{first} + i % {patients}, {past_day}, {NOON[d].format(day=past_day)}, 'past-' || i, "
            "1000000, 20.0, 'dose.mp4', 'raw/p' || i || '.mp4', 'review/p' || i || '.mp4', "
            f"'poster/p' || i || '.jpg', {PAST_STATUS}, 1, {NOON[d].format(day=past_day)}"
        ),
        count=past,
        start=start,
    )
    wait_day = DAY[d].format(offset="i % 14")
    insert_series(
        engine,
        "submissions",
        cols,
        (
            f"{first} + i % {patients}, {wait_day}, {NOON[d].format(day=wait_day)}, 'wait-' || i, "
            "1000000, 20.0, 'dose.mp4', 'raw/w' || i || '.mp4', 'review/w' || i || '.mp4', "
            f"'poster/w' || i || '.jpg', 'review', 1, {NOON[d].format(day=wait_day)}"
        ),
        count=waiting,
        start=today - timedelta(days=13),
    )
    timings["submissions_s"] = time.perf_counter() - started - sum(timings.values())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO scores (submission_id, model_version, threshold_version, confidence, "
                "decision, face_visible, max_faces, key_moment_s, events, quality, reasons, "
                "processing_s, created_at) SELECT id, 'bench-1', 'v1', CASE WHEN status = "
                "'auto_accepted' THEN 0.9 + (id % 100) / 1000.0 "
                "ELSE ((id % 1000) * 7919 % 900) / 1000.0 END, CASE WHEN status = 'auto_accepted' "
                "THEN 'auto_accept' ELSE 'review' END, TRUE, 1, 1.5, "
                f"{JSON[d].format(value=EVENTS)}, {JSON[d].format(value=repr('{}'))}, "
                f"{JSON[d].format(value=REASONS)}, 1.0, received_at FROM submissions"
            )
        )
        conn.execute(
            text(
                "INSERT INTO reviews (submission_id, reviewer_id, verdict, previous_status, "
                "created_at) SELECT id, :reviewer, CASE status WHEN 'accepted' THEN 'accept' "
                "WHEN 'rejected' THEN 'reject' ELSE 'unclear' END, 'review', updated_at "
                "FROM submissions WHERE status IN ('accepted', 'rejected', 'unclear')"
            ),
            {"reviewer": reviewer},
        )
    timings["scores_reviews_s"] = time.perf_counter() - started - sum(timings.values())
    if d == "postgresql":
        # What autovacuum does soon after a bulk load: statistics, and the visibility map that
        # index-only scans need. SQLite is left as the application leaves it (no ANALYZE).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        timings["vacuum_analyze_s"] = time.perf_counter() - started - sum(timings.values())
    return {k: round(v, 1) for k, v in timings.items()}


def counts(engine: Engine) -> dict[str, int]:
    s = schema.submissions
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(s)).scalar_one()
        waiting = conn.execute(select(func.count()).where(s.c.status == "review")).scalar_one()
        scored = conn.execute(select(func.count()).select_from(schema.scores)).scalar_one()
    return {"waiting": waiting, "past": total - waiting, "scores": scored}


def time_page(client: Any, path: str, requests: int) -> dict[str, float]:
    """p50/p95/max milliseconds of ``requests`` GETs of ``path`` (after two warm-ups)."""
    for _ in range(2):
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        reply = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        assert reply.status_code == 200, (path, reply.status_code)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, math.ceil(0.95 * len(times)) - 1)], 1),
        "max_ms": round(times[-1], 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_queue",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--past", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--database-url", help="default: SQLite in --data-dir")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "bench" / "out" / "queue")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database when it already holds these counts"
    )
    args = parser.parse_args(argv)
    settings = bench_settings(args.database_url, args.data_dir)
    from review_ui import create_app

    engine = get_engine(settings)
    built: dict[str, float] = {}
    try:
        reusable = args.reuse and counts(engine) == {
            "waiting": args.waiting,
            "past": args.past,
            "scores": args.waiting + args.past,
        }
    except SQLAlchemyError:  # no database or tables yet: build one
        reusable = False
    if not reusable:
        engine.dispose()
        fresh_database(settings)
        upgrade(engine)
        built = build(engine, args.waiting, args.past)
    client = create_app(settings).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert (
        client.post(
            "/login", data={"username": SUPERVISOR, "password": PASSWORD, "csrf_token": token}
        ).status_code
        == 302
    )
    html = client.get("/review").get_data(as_text=True)
    first = re.search(r'data-submission-id="(\d+)"', html).group(1)  # type: ignore[union-attr]
    result: dict[str, Any] = {
        "database": engine.dialect.name,
        **counts(engine),
        "rows_on_page": html.count("data-submission-id="),
        "requests": args.requests,
        **time_page(client, "/review", args.requests),
        "variants": {
            path: time_page(client, path, max(10, args.requests // 5))
            for path in (
                "/review?order=doubtful",
                "/review?reason=too_dark",
                "/review?page=150",
                f"/review/{first}",
            )
        },
        "build_s": built or "reused",
        # Other work on the machine skews the figures: the load while they were taken.
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
