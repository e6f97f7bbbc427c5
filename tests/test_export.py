"""``vot export adherence`` as an analyst runs it: the contract columns, no codes or names,
stable order and bytes, the as-of rule, the filters and the stated definitions."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from test_ledger import add_patient, add_user, add_video, excuse

from tests.conftest import run_cli
from vot import accounts, schema
from vot.adherence import analytics, export
from vot.adherence.scope import EVERYONE, Scope
from vot.config import Settings

CONTRACT = [
    "pseudonym",
    "clinic",
    "district",
    "regimen_start",
    "expected",
    "taken",
    "adherence",
    "flag_below_80",
    "flag_ltfu",
    "completed",
]
CODES = ("ALICE-WANG-001", "BOB-LI-002", "CAROL-003", "DAN-004")


def vot(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "VOT_DATA_DIR": str(tmp_path / "data"),
        "VOT_SECRET_KEY": "t",
        "VOT_DATABASE_URL": settings.database_url,
    }
    return run_cli(*args, env=env, timeout=120)


@pytest.fixture
def seeded(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Four patients in two districts whose names are in their codes (they must not leak)."""
    start = date(2024, 3, 1)
    with engine.begin() as conn:
        north = accounts.ensure_clinic(conn, "North Clinic", "Lakeside")
        south = accounts.ensure_clinic(conn, "South Clinic", "Hills")
        ids = {}
        for n, code in enumerate(CODES):
            ids[code] = pid = add_patient(conn, north if n < 2 else south, start, code=code)
            for day in range(10 - 3 * n):  # 10, 7, 4 and 1 doses from 1 March
                add_video(conn, pid, start + timedelta(days=day), schema.AUTO_ACCEPTED)
    return ids


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_contract_figures_and_no_codes(settings: Settings, seeded, tmp_path: Path) -> None:
    done = vot(
        settings, tmp_path, "export", "adherence", "--format", "csv", "--as-of", "2024-03-10"
    )
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0].split(",")
    assert header[:3] == CONTRACT[:3] and set(CONTRACT) <= set(header)
    assert not done.stdout.startswith("#")  # data only: the metadata travels beside it
    rows = rows_of(done.stdout)
    # Ordered by district, clinic, pseudonym: Hills (South) before Lakeside (North).
    assert [r["district"] for r in rows] == ["Hills", "Hills", "Lakeside", "Lakeside"]
    assert rows[2]["pseudonym"] < rows[3]["pseudonym"]
    by_taken = {int(r["taken"]): r for r in rows}
    assert sorted(by_taken) == [1, 4, 7, 10]
    assert {r["expected"] for r in rows} == {"10"}  # 1 to 10 March
    full, low = by_taken[10], by_taken[7]
    assert (full["adherence"], full["flag_below_80"], full["flag_ltfu"], full["completed"]) == (
        "1.0",
        "0",
        "0",
        "0",
    )
    assert (low["adherence"], low["flag_below_80"], low["as_of"]) == ("0.7", "1", "2024-03-10")
    for code in CODES:
        assert code not in done.stdout
        for name in (part for part in code.split("-") if part.isalpha()):
            assert name not in done.stdout  # nor any part of a name


def test_export_is_deterministic_and_json_states_as_of_and_definitions(
    settings: Settings, seeded, tmp_path: Path
) -> None:
    args = ("export", "adherence", "--as-of", "2024-03-10")
    first, second = (vot(settings, tmp_path, *args, "--format", "csv") for _ in range(2))
    assert first.stdout == second.stdout and first.stdout.count("\n") == 5
    meta_file = tmp_path / "meta.json"
    out_file = tmp_path / "adherence.json"
    done = vot(
        settings,
        tmp_path,
        *args,
        "--format",
        "json",
        "--output",
        str(out_file),
        "--meta",
        str(meta_file),
    )
    assert done.returncode == 0 and done.stdout == ""
    body = json.loads(out_file.read_text())
    assert body["as_of"] == "2024-03-10" and body["rows"] == 4
    assert body["definitions"]["thresholds"] == {
        "below_pct": 80,
        "ltfu_days": 60,
        "intensive_days": 56,
        "completion_window_pct": 150,
    }
    assert "adherence" in body["definitions"] and "as_of_rule" in body["definitions"]
    assert [i["pseudonym"] for i in body["items"]] == [
        r["pseudonym"] for r in rows_of(first.stdout)
    ]
    assert json.loads(meta_file.read_text())["definitions"] == body["definitions"]
    assert "ALICE" not in out_file.read_text()


def test_filters_by_district_clinic_and_regimen_start(
    settings: Settings, seeded, tmp_path: Path, engine
) -> None:
    with engine.begin() as conn:  # a later regimen start in the south
        south = accounts.ensure_clinic(conn, "South Clinic")
        add_patient(conn, south, date(2024, 3, 8), code="LATE-005")

    def exported(*filters: str) -> list[dict[str, str]]:
        done = vot(settings, tmp_path, "export", "adherence", "--as-of", "2024-03-10", *filters)
        assert done.returncode == 0, done.stderr
        return rows_of(done.stdout)

    assert len(exported()) == 5
    assert {r["clinic"] for r in exported("--district", "Lakeside")} == {"North Clinic"}
    assert len(exported("--clinic", "South Clinic")) == 3
    late = exported("--start-from", "2024-03-05")
    assert [(r["regimen_start"], r["expected"]) for r in late] == [("2024-03-08", "3")]
    assert exported("--district", "Nowhere") == []


def test_bad_date_is_a_usage_error(settings: Settings, tmp_path: Path) -> None:
    done = vot(settings, tmp_path, "export", "adherence", "--as-of", "10/03/2024")
    assert done.returncode == 2 and "YYYY-MM-DD" in done.stderr


def test_snapshot_export_equals_the_live_export_row_for_row(engine, seeded) -> None:
    now = datetime(2024, 3, 12, 20, 0, tzinfo=UTC)  # already 13 March in Shanghai
    with engine.begin() as conn:
        north = accounts.ensure_clinic(conn, "North Clinic")
        south = accounts.ensure_clinic(conn, "South Clinic")
        user = add_user(conn, north)
        late = add_patient(conn, south, date(2024, 3, 8), code="LATE-005")
        east = add_patient(conn, north, date(2024, 3, 2), tz="Asia/Shanghai", code="EAST-006")
        add_video(conn, late, date(2024, 3, 8), schema.REJECTED)
        add_video(conn, late, date(2024, 3, 9), schema.REVIEW)
        excuse(conn, late, date(2024, 3, 10), user)
        for day in range(2, 14):
            add_video(conn, east, date(2024, 3, day), schema.ACCEPTED)
        assert analytics.refresh(conn, now) == now
    scopes = [
        EVERYONE,
        Scope(district="Lakeside"),
        Scope(clinic="South Clinic"),
        Scope(district="Hills", clinic="South Clinic"),
        Scope(start_from=date(2024, 3, 2)),
        Scope(start_to=date(2024, 3, 1)),
        Scope(district="Nowhere"),
    ]
    with engine.connect() as conn:
        live = export.records(conn, now)
        assert len(live) == 6 and {r["as_of"] for r in live} == {"2024-03-12", "2024-03-13"}
        assert {r["pending"] for r in live} == {0, 1} and {r["excused"] for r in live} == {0, 1}
        for scope in scopes:
            assert export.snapshot_records(conn, scope=scope) == (
                now,
                export.records(conn, now, scope=scope),
            ), scope
        assert export.snapshot_records(conn, limit=2, offset=3)[1] == live[3:5]


def test_snapshot_export_is_as_of_its_refresh_and_refuses_another_date(engine, seeded) -> None:
    then = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        analytics.refresh(conn, then)
        before = export.records(conn, then)
        add_video(conn, seeded["DAN-004"], date(2024, 3, 2), schema.ACCEPTED)
    later = then + timedelta(hours=1)
    with engine.connect() as conn:
        at, stale = export.snapshot_records(conn)
        assert at == then and stale == before
        assert stale != export.records(conn, later)  # DAN's new dose is not in it
        meta = export.metadata(later, None, EVERYONE, export.STANDARD, len(stale), at)
        assert (meta["source"], meta["computed_at"]) == ("snapshot", then.isoformat())
        assert export.metadata(later, None, EVERYONE, export.STANDARD, 0)["source"] == "live"
        with pytest.raises(export.SnapshotAsOf, match="export live"):
            export.snapshot_records(conn, date(2024, 3, 10))
    with engine.begin() as conn:
        analytics.refresh(conn, later)
    with engine.connect() as conn:
        assert export.snapshot_records(conn) == (later, export.records(conn, later))


def test_snapshot_export_on_the_command_line(settings: Settings, seeded, tmp_path: Path) -> None:
    args = ("export", "adherence", "--snapshot")
    absent = vot(settings, tmp_path, *args)
    assert absent.returncode == 1 and absent.stdout == ""
    assert absent.stderr.count("\n") == 1 and "vot analytics refresh" in absent.stderr
    refreshed = vot(settings, tmp_path, "analytics", "refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    at = refreshed.stdout.split()[-1]
    # The regimens ended in 2024: the figures are the same whenever they are computed.
    live = vot(settings, tmp_path, "export", "adherence")
    snapshot = vot(settings, tmp_path, *args)
    assert snapshot.returncode == 0, snapshot.stderr
    assert snapshot.stdout == live.stdout and len(rows_of(snapshot.stdout)) == 4
    body = json.loads(vot(settings, tmp_path, *args, "--format", "json").stdout)
    assert (body["source"], body["computed_at"], body["as_of"]) == ("snapshot", at, None)
    assert body["rows"] == 4 and "ALICE" not in json.dumps(body)
    dated = vot(settings, tmp_path, *args, "--as-of", "2024-03-10", "--district", "Hills")
    assert dated.returncode == 1 and "export live" in dated.stderr and dated.stdout == ""
