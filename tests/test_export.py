"""``vot export adherence`` as an analyst runs it: the contract columns, no codes or names,
stable order and bytes, the as-of rule, the filters and the stated definitions."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from test_ledger import add_patient, add_video

from tests.conftest import run_cli
from vot import accounts, schema
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
