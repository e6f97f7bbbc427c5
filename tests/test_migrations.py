from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select, text

from vot import schema
from vot.migrations import HEAD, MIGRATIONS, current_version, upgrade


def test_new_database_is_created_at_head(settings) -> None:
    from vot.db import get_engine

    engine = get_engine(settings)
    assert current_version(engine) is None
    assert upgrade(engine) == list(range(1, HEAD + 1))
    assert current_version(engine) == HEAD
    assert upgrade(engine) == []  # idempotent


def test_version_1_database_is_upgraded_keeping_its_rows(engine) -> None:
    # Turn the fresh database back into what version 1 looked like, with a row in it.
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE patient_tokens"))
        conn.execute(text("ALTER TABLE scores DROP COLUMN key_moment_s"))
        conn.execute(
            schema.schema_migrations.delete().where(schema.schema_migrations.c.version > 1)
        )
        conn.execute(
            schema.clinics.insert().values(
                name="Old clinic", district="D", created_at=datetime.now(UTC)
            )
        )
    assert current_version(engine) == 1
    assert upgrade(engine) == [m.version for m in MIGRATIONS if m.version > 1]
    with engine.connect() as conn:
        assert inspect(conn).has_table("patient_tokens")
        assert "key_moment_s" in {c["name"] for c in inspect(conn).get_columns("scores")}
        assert conn.execute(select(schema.clinics.c.name)).scalars().all() == ["Old clinic"]


def test_newer_database_is_refused(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            schema.schema_migrations.insert().values(
                version=HEAD + 1, description="future", applied_at=datetime.now(UTC)
            )
        )
    with pytest.raises(RuntimeError, match="newer than this vot"):
        upgrade(engine)


def test_version_5_database_gets_the_retention_columns_keeping_its_rows(engine) -> None:
    from datetime import date

    from vot.db import as_utc

    now = datetime.now(UTC)
    with engine.begin() as conn:
        for column in ("raw_deleted_at", "review_deleted_at", "erased_at"):
            conn.execute(text(f"ALTER TABLE submissions DROP COLUMN {column}"))
        _as_version(conn, 5, now)
        # Written without the new columns, as a version-5 vot would.
        conn.execute(
            text(
                "INSERT INTO submissions (id, patient_id, dose_date, received_at, content_sha256,"
                " size_bytes, original_filename, raw_key, status, attempts, updated_at) VALUES"
                " (1, 1, :day, :now, 'ab', 10, 'v.mp4', 'raw/ab/ab', 'accepted', 1, :now)"
            ),
            {"day": date(2024, 3, 1), "now": now},
        )
    assert current_version(engine) == 5
    assert upgrade(engine) == list(range(6, HEAD + 1))
    s = schema.submissions
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("submissions")}
        assert {"raw_deleted_at", "review_deleted_at", "erased_at"} <= columns
        row = conn.execute(select(s.c.status, s.c.raw_key, s.c.raw_deleted_at, s.c.erased_at)).one()
    assert tuple(row) == ("accepted", "raw/ab/ab", None, None)
    with engine.begin() as conn:  # the new columns take a time with its zone
        conn.execute(s.update().values(review_deleted_at=now))
        stored = conn.execute(select(s.c.review_deleted_at)).scalar_one()
    assert as_utc(stored) == now


def test_version_6_snapshot_gets_the_export_columns_keeping_its_rows(engine) -> None:
    from datetime import date

    from vot.adherence import export

    now = datetime.now(UTC)
    snap = schema.adherence_snapshot
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_adherence_snapshot_export"))
        for column in ("pseudonym", "clinic", "district", "record"):
            conn.execute(text(f"ALTER TABLE adherence_snapshot DROP COLUMN {column}"))
        _as_version(conn, 6, now)
        # A snapshot row as a version-6 refresh wrote it: no export row.
        conn.execute(
            text(
                "INSERT INTO adherence_snapshot (patient_id, clinic_id, regimen_start, as_of,"
                " expected, taken, excused, missed, longest_missed_run, flag_below, flag_ltfu,"
                " completed, computed_at) VALUES (1, 1, :start, :start, 3, 2, 0, 1, 1, :yes,"
                " :no, :no, :now)"
            ),
            {"start": date(2024, 3, 1), "now": now, "yes": True, "no": False},
        )
    assert current_version(engine) == 6
    assert upgrade(engine) == list(range(7, HEAD + 1))
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("adherence_snapshot")}
        assert {"pseudonym", "clinic", "district", "record"} <= columns
        indexes = {i["name"] for i in inspect(conn).get_indexes("adherence_snapshot")}
        assert "ix_adherence_snapshot_export" in indexes
        row = conn.execute(select(snap.c.expected, snap.c.taken, snap.c.record)).one()
        assert tuple(row) == (3, 2, None)
        # The old rows serve the dashboard still, but not the export: it asks for a refresh.
        with pytest.raises(export.NoSnapshot, match="refresh it first"):
            export.snapshot_records(conn)


def test_version_7_database_gets_courses_and_its_day_ledger_filled_in(engine) -> None:
    """A course enrolled before regimens were data keeps its length and weekdays, and its day
    ledger is written from the videos already there, so its figures do not change."""
    from datetime import date

    from vot.adherence import ledger

    now = datetime.now(UTC)
    with engine.begin() as conn:
        for table in ("regimen_definitions", "regimen_changes", "observed_doses", "followup_calls"):
            conn.execute(text(f"DROP TABLE {table}"))
        for column in ("regimen_id", "days", "outcome", "outcome_date", "outcome_by"):
            conn.execute(text(f"ALTER TABLE regimens DROP COLUMN {column}"))
        _as_version(conn, 7, now)
        conn.execute(
            text(
                "INSERT INTO regimens (id, patient_id, start_date, length_days, doses_per_day,"
                " days_per_week, weekday_mask, created_at) VALUES (1, 1, :start, 10, 1, 5, NULL,"
                " :now)"
            ),
            {"start": date(2024, 3, 4), "now": now},  # a Monday; Monday to Friday
        )
        for sub_id, day, status in ((1, 4, "accepted"), (2, 5, "rejected"), (3, 8, "accepted")):
            conn.execute(
                text(
                    "INSERT INTO submissions (id, patient_id, dose_date, received_at,"
                    " content_sha256, size_bytes, original_filename, raw_key, status, attempts,"
                    " updated_at) VALUES (:id, 1, :day, :now, :sha, 10, 'v.mp4', 'raw/x', :status,"
                    " 1, :now)"
                ),
                {
                    "id": sub_id,
                    "day": date(2024, 3, day),
                    "now": now,
                    "sha": f"{sub_id:064x}",
                    "status": status,
                },
            )
    assert current_version(engine) == 7
    assert upgrade(engine) == list(range(8, HEAD + 1))
    r = schema.regimens
    with engine.connect() as conn:
        row = conn.execute(select(r.c.regimen_id, r.c.days, r.c.outcome)).one()
        figures = ledger.for_patient(conn, 1, datetime(2024, 3, 20, tzinfo=UTC))
    assert tuple(row) == (None, "VR..V", None)
    # Ten days from Monday 4 March, weekdays only: 8 dose days, 2 taken, 1 rejected, 5 missed.
    assert (figures.expected, figures.taken, figures.rejected, figures.missed) == (8, 2, 1, 5)


def _as_version(conn, version: int, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """Mark the database as at ``version`` and give it clinic 1 with patient 1 (code P-1)."""
    conn.execute(
        schema.schema_migrations.delete().where(schema.schema_migrations.c.version > version)
    )
    conn.execute(schema.clinics.insert().values(id=1, name="C", district="", created_at=now))
    conn.execute(
        schema.patients.insert().values(
            id=1, code="P-1", clinic_id=1, timezone="UTC", pseudonym="p1", created_at=now
        )
    )
