"""How fast adherence is at national scale: ``python -m bench.bench_adherence``.

Builds ``--patients`` patients (default 100,000) on regimens that have all ended (80 % on the
daily 6HRZE, 15 % on the weekly 3HP, 5 % on 6HRZE-TIW, daily then three times a week), with videos
for most dose days, excusals, reviews and scores, by INSERT ... SELECT over number series, in
SQLite and in PostgreSQL (or only in ``--database-url``); then writes the day ledger from them
(``day_ledger_s``), as the migration does for an existing database. Then times the national
export, the export of one district, the API for one clinic, one patient's figures, the
dashboard snapshot refresh, the national export read from that snapshot (``export_snapshot_s``, with
``export_snapshot_same``: its rows equal the live export's) and the dashboard reads
(functions and, when the web app is there, the HTTP pages).
Prints one JSON object; asserts no timing.

    python -m bench.bench_adherence --patients 10000
    python -m bench.bench_adherence --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from vot import accounts, schema
from vot.adherence import analytics, export, ledger
from vot.adherence import dashboard as boards
from vot.adherence import rules as adherence
from vot.adherence.scope import Scope
from vot.config import load_settings
from vot.db import get_engine, utcnow
from vot.migrations import upgrade
from vot.treatment import days

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)  # fixed, so every run builds the same data
CLINICS, DISTRICTS, DAYS = 500, 50, 180
ANALYST, PASSWORD = "bench-analyst", "bench-password-1"
ZONES = "CASE id % 10 WHEN 7 THEN 'UTC' WHEN 8 THEN 'Asia/Kolkata' ELSE 'Africa/Johannesburg' END"
SQL = {
    "sqlite": {
        "series": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) ",
        "days": f"WITH RECURSIVE days(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM days "
        f"WHERE d < {DAYS - 1}) ",
        "days_from": "days",
        "pseudonym": "'P-' || printf('%012X', i)",
        "start": "date(:now, '-' || (181 + id % 31) || ' days')",
        "day": "date(r.start_date, '+' || d || ' days')",
        "received": "(datetime(r.start_date, '+' || d || ' days', '+12 hours', '+' || "
        "({h2} * 7) || ' minutes') || '.000000')",
        "later": "(datetime(s.received_at, '+' || (s.id % 2880) || ' minutes') || '.000000')",
        "json": "'{value}'",
        "dow": "CAST(strftime('%w', date(r.start_date, '+' || d || ' days')) AS INTEGER)",
    },
    "postgresql": {
        "series": "WITH n(i) AS (SELECT generate_series(1, {n})) ",
        "days": "",
        "days_from": f"generate_series(0, {DAYS - 1}) AS days(d)",
        "pseudonym": "'P-' || upper(lpad(to_hex(i), 12, '0'))",
        "start": "(CAST(:now AS date) - (181 + id % 31))",
        "day": "(r.start_date + d)",
        "received": "(((r.start_date + d) + interval '12 hours' + ({h2} * 7) * interval "
        "'1 minute') AT TIME ZONE 'UTC')",
        "later": "(s.received_at + (s.id % 2880) * interval '1 minute')",
        "json": "CAST('{value}' AS json)",
        "dow": "CAST(EXTRACT(DOW FROM (r.start_date + d)) AS INTEGER)",
    },
}
# Per patient-day: h1 decides whether a video came, h2 its status and arrival time.
H1 = "((r.patient_id * 7919 + d * 104729 + (r.patient_id * d) % 997) % 100)"
H2 = "((r.patient_id * 31 + d * 17 + (r.patient_id * d) % 89) % 100)"
RATE = "CASE r.patient_id % 10 WHEN 0 THEN 50 WHEN 1 THEN 80 WHEN 2 THEN 80 ELSE 96 END"
GONE = "(r.patient_id % 25 = 0 AND d > 30 + r.patient_id % 120)"  # stopped coming: LTFU
# The mix of regimens, by patient id: 80 % daily, 15 % weekly, 5 % three times a week.
REGIMEN = (
    "CASE id % 20 WHEN 0 THEN '6HRZE-TIW' WHEN 1 THEN '3HP' WHEN 2 THEN '3HP' "
    "WHEN 3 THEN '3HP' ELSE '6HRZE' END"
)
LENGTH = "CASE id % 20 WHEN 1 THEN 84 WHEN 2 THEN 84 WHEN 3 THEN 84 ELSE 180 END"
DUE = (
    "(CASE WHEN r.regimen_id = '3HP' THEN d % 7 = 0 AND d < 84 "
    "WHEN r.regimen_id = '6HRZE-TIW' THEN d < 56 OR {dow} IN (1, 3, 5) ELSE TRUE END)"
)
CAME = f"({H1} < {RATE} AND NOT {GONE} AND {DUE})"
STATUS = (
    f"CASE WHEN {H2} < 75 THEN 'auto_accepted' WHEN {H2} < 92 THEN 'accepted' "
    f"WHEN {H2} < 95 THEN 'rejected' WHEN {H2} < 97 THEN 'unclear' ELSE 'review' END"
)


def run_sql(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":  # a benchmark's throwaway file: no fsync per step
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(text(sql), params)


BULK_TABLES = ("submissions", "excusals", "reviews", "scores")


@contextmanager
def indexes_dropped(engine: Engine) -> Iterator[None]:
    """Load without the secondary indexes, then build them once (as a bulk load would)."""
    indexes = [i for t in BULK_TABLES for i in schema.metadata.tables[t].indexes]
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    yield
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        for index in indexes:
            index.create(conn)


def build(engine: Engine, patients: int) -> dict[str, Any]:
    """Fill an empty, migrated database; returns seconds per step and row counts."""
    q, started, steps = SQL[engine.dialect.name], time.perf_counter(), {}

    def step(name: str) -> None:
        steps[name] = round(time.perf_counter() - started - sum(steps.values()), 1)

    with engine.begin() as conn:
        for n in range(CLINICS):
            accounts.ensure_clinic(conn, f"Clinic {n:03d}", f"District {n % DISTRICTS:02d}")
        accounts.ensure_user(conn, ANALYST, PASSWORD, "analyst", None)
        accounts.ensure_user(conn, "bench-supervisor", PASSWORD, "supervisor", 1)
    ts = "'2025-01-01 00:00:00'"
    run_sql(
        engine,
        q["series"].format(n=patients) + "INSERT INTO patients (id, code, clinic_id, "
        f"timezone, pseudonym, created_at) SELECT i, 'B-' || i, 1 + i % {CLINICS}, "
        f"{ZONES.replace('id', 'i')}, {q['pseudonym']}, {ts} FROM n",
    )
    run_sql(
        engine,
        "INSERT INTO regimens (patient_id, start_date, length_days, doses_per_day, "
        f"days_per_week, regimen_id, created_at) SELECT id, {q['start']}, {LENGTH}, 1, 7, "
        f"{REGIMEN}, {ts} FROM patients",
        now=NOW.date(),
    )
    step("patients_s")
    with indexes_dropped(engine):
        fill(engine, q, patients)
    step("rows_and_indexes_s")
    with engine.begin() as conn:
        days.rebuild(conn)
    step("day_ledger_s")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        run_sql(engine, "ANALYZE")
    step("analyze_s")
    with engine.connect() as conn:
        for table in BULK_TABLES:
            steps[table] = conn.execute(
                select(func.count()).select_from(schema.metadata.tables[table])
            ).scalar_one()
    return steps


def fill(engine: Engine, q: dict[str, str], patients: int) -> None:
    """Videos, excusals, reviews and scores, all by INSERT ... SELECT."""
    ts = "'2025-01-01 00:00:00'"
    insert = (
        "INSERT INTO submissions (patient_id, dose_date, received_at, content_sha256, "
        "size_bytes, original_filename, raw_key, status, attempts, updated_at) "
    )
    received = q["received"].format(h2=H2)
    came = CAME.replace("{dow}", q["dow"])
    run_sql(
        engine,
        q["days"] + insert + f"SELECT r.patient_id, {q['day']}, {received}, "
        f"r.patient_id || '-' || d, 1000000, 'dose.mp4', 'raw/b', {STATUS}, 1, {received} "
        f"FROM regimens r CROSS JOIN {q['days_from']} WHERE {came}",
    )
    run_sql(
        engine,
        q["days"] + "INSERT INTO excusals (patient_id, dose_date, reason, "
        f"recorded_by, created_at) SELECT r.patient_id, {q['day']}, 'in_hospital', 2, {ts} "
        f"FROM regimens r CROSS JOIN {q['days_from']} WHERE NOT {came} "
        f"AND {DUE.replace('{dow}', q['dow'])} AND (r.patient_id * 13 + d * 7) % 40 = 0",
    )
    run_sql(
        engine,
        "INSERT INTO reviews (submission_id, reviewer_id, verdict, previous_status, "
        "created_at) SELECT s.id, 2, CASE s.status WHEN 'accepted' THEN 'accept' WHEN "
        "'rejected' THEN 'reject' ELSE 'unclear' END, CASE WHEN s.status = 'accepted' AND "
        f"s.id % 8 = 0 THEN 'auto_accepted' ELSE 'review' END, {q['later']} FROM submissions "
        "s WHERE s.status IN ('accepted', 'rejected', 'unclear')",
    )
    run_sql(
        engine,
        "INSERT INTO scores (submission_id, model_version, threshold_version, "
        "confidence, decision, face_visible, max_faces, events, quality, reasons, "
        "created_at) SELECT v.submission_id, 'bench', 'v1', 0.5, CASE WHEN "
        "v.previous_status = 'auto_accepted' THEN 'auto_accept' WHEN v.submission_id % 3 = 0 "
        "THEN 'reject' ELSE 'review' END, TRUE, 1, "
        f"{q['json'].format(value='[]')}, {q['json'].format(value='{}')}, "
        f"{q['json'].format(value='[]')}, v.created_at FROM reviews v",
    )


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def measure(engine: Engine, settings: Any, patients: int) -> dict[str, Any]:
    """Seconds for the exports, milliseconds for the pages."""
    got: dict[str, Any] = {}

    def national_export(snapshot: bool = False) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = export.snapshot_records(conn)[1] if snapshot else export.records(conn, NOW)
        out = io.StringIO()
        export.write_csv(rows, out, adherence.STANDARD)
        return rows

    seconds, live = timed(national_export)
    got.update(export_s=round(seconds, 2), export_rows=len(live))
    with engine.connect() as conn:
        for name, scope in (
            ("district", Scope(district="District 07")),
            ("clinic", Scope(clinic="Clinic 123")),
        ):
            seconds, found = timed(lambda s=scope: export.records(conn, NOW, scope=s), 3)
            got[f"export_{name}_ms"] = round(seconds * 1000, 1)
            got[f"export_{name}_rows"] = len(found)
        seconds, _ = timed(lambda: ledger.for_patient(conn, 1 + patients // 2, NOW), 10)
        got["for_patient_ms"] = round(seconds * 1000, 1)
    with engine.begin() as conn:
        seconds, _ = timed(lambda: analytics.refresh(conn, NOW))
        # The data are as of NOW, the pages' clock is the real one: mark the snapshot fresh so
        # a page does not start recomputing it in the background while it is being timed.
        conn.execute(schema.adherence_snapshot.update().values(computed_at=utcnow()))
    got["dashboard_refresh_s"] = round(seconds, 2)
    # The same national export read from the rows the refresh stored (as of NOW too).
    seconds, stored = timed(lambda: national_export(snapshot=True), 3)
    got.update(
        export_snapshot_s=round(seconds, 2),
        export_snapshot_same=stored == live,
        export_live_over_snapshot=round(got["export_s"] / seconds, 1),
    )
    with engine.connect() as conn:
        for name, kw in (
            ("national", {}),
            ("district", {"district": "District 07"}),
            ("clinic", {"clinic": "Clinic 123"}),
        ):
            seconds, _ = timed(lambda k=kw: boards.dashboard(conn, **k), 10)
            got[f"dashboard_{name}_ms"] = round(seconds * 1000, 1)
    got.update(pages(settings))
    return got


def pages(settings: Any) -> dict[str, Any]:
    """Median milliseconds of the analyst's pages through Flask's test client."""
    try:
        from review_ui import create_app
    except ImportError:
        return {"pages": "review_ui not available"}
    app = create_app(settings)
    if "analyst.dashboard" not in app.view_functions:
        return {"pages": "analyst blueprint not registered"}
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    client.post(
        "/login",
        data={
            "username": ANALYST,
            "password": PASSWORD,
            "csrf_token": token.group(1) if token else "",
        },
    )
    got = {}
    for name, path in (
        ("page_dashboard_ms", "/analyst"),
        ("page_dashboard_district_ms", "/analyst?district=District+07"),
        ("api_dashboard_ms", "/api/v1/dashboard"),
        ("api_adherence_clinic_ms", "/api/v1/adherence?clinic=Clinic+123"),
    ):
        seconds, reply = timed(lambda p=path: client.get(p), 5)
        got[name] = round(seconds * 1000, 1) if reply.status_code == 200 else reply.status_code
    return got


@contextmanager
def database(url: str | None, kind: str, keep: bool = False) -> Iterator[str]:
    """A fresh database of ``kind``: a temporary SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="vot-bench-") as folder:
            yield url if url else f"sqlite:///{folder}/bench.db"
        return
    admin_url = make_url(
        url
        or os.environ.get("VOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    name = f"vot_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    made = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield made
    finally:
        if keep:
            print(f"kept the database: --reuse {made}", file=sys.stderr)
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settings_for(database_url: str, data: str) -> Any:
    env = {"VOT_DATA_DIR": data, "VOT_SECRET_KEY": "bench-secret", "VOT_DATABASE_URL": database_url}
    return load_settings(env)


def run(kind: str, url: str | None, patients: int, keep: bool) -> dict[str, Any]:
    with database(url, kind, keep) as database_url, tempfile.TemporaryDirectory() as data:
        settings = settings_for(database_url, data)
        engine = get_engine(settings)
        upgrade(engine)
        built = build(engine, patients)
        result = {
            "database": engine.dialect.name,
            "patients": patients,
            "build": built,
            **measure(engine, settings, patients),
        }
        engine.dispose()
        return result


def reuse(database_url: str) -> dict[str, Any]:
    """Measure again on a database an earlier build left (see ``--reuse``)."""
    with tempfile.TemporaryDirectory() as data:
        settings = settings_for(database_url, data)
        engine = get_engine(settings)
        upgrade(engine)
        with engine.connect() as conn:
            patients = conn.execute(select(func.count()).select_from(schema.patients)).scalar_one()
        result = {
            "database": engine.dialect.name,
            "patients": patients,
            "build": "reused",
            **measure(engine, settings, patients),
        }
        engine.dispose()
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_adherence",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        help="only this database: an SQLite file URL to "
        "create, or a PostgreSQL server URL (a new database is made there)",
    )
    parser.add_argument(
        "--reuse",
        metavar="URL",
        help="skip the build: measure on this database, built by an earlier run",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the PostgreSQL database for --reuse (an SQLite file given "
        "with --database-url is always kept)",
    )
    args = parser.parse_args(argv)
    if args.reuse:
        results = [reuse(args.reuse)]
    else:
        kinds = ["sqlite", "postgresql"]
        if args.database_url:
            kinds = ["sqlite" if args.database_url.startswith("sqlite") else "postgresql"]
        results = []
        for kind in kinds:  # each database's figures as they come, in case a later one fails
            results.append(run(kind, args.database_url, args.patients, args.keep))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"now": NOW.isoformat(), "days": DAYS, "results": results}))


if __name__ == "__main__":
    main()
