from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import video
from vot import accounts, schema
from vot.intake.ingest import IngestError, dose_date_for, ingest_file
from vot.storage import open_storage


@pytest.fixture
def patient(engine) -> str:
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A", "District 1")
        accounts.add_patient(conn, "P-1", clinic, date(2026, 11, 1), "Asia/Shanghai")
    return "P-1"


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_same_file_same_dose_is_one_submission(engine, settings, patient) -> None:
    storage = open_storage(settings)
    first = ingest_file(engine, storage, settings, patient, video(), dose_date=date(2026, 11, 5))
    again = ingest_file(engine, storage, settings, patient, video(), dose_date=date(2026, 11, 5))
    assert first.created and not again.created
    assert again.submission_id == first.submission_id
    assert count(engine, schema.submissions) == 1
    other_day = ingest_file(
        engine, storage, settings, patient, video(), dose_date=date(2026, 11, 6)
    )
    assert other_day.created and count(engine, schema.submissions) == 2
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.submissions).where(schema.submissions.c.id == first.submission_id)
        ).one()
    assert row.status == schema.RECEIVED
    assert storage.exists(row.raw_key) and storage.size(row.raw_key) == row.size_bytes
    assert row.duration_s == pytest.approx(2.0, abs=0.05)


def test_dose_date_is_the_recording_day_in_the_patients_zone() -> None:
    # 23:50 in Shanghai is 15:50 UTC the same day; uploaded the next morning, it is still that dose.
    recorded = datetime(2026, 3, 1, 23, 50, tzinfo=timezone(timedelta(hours=8)))
    assert dose_date_for(recorded, "Asia/Shanghai") == date(2026, 3, 1)
    assert dose_date_for(recorded, "UTC") == date(2026, 3, 1)
    assert dose_date_for(recorded, "America/New_York") == date(2026, 3, 1)
    late = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 March in Shanghai
    assert dose_date_for(late, "Asia/Shanghai") == date(2026, 3, 2)
    with pytest.raises(IngestError, match="UTC offset"):
        dose_date_for(datetime(2026, 3, 1, 12, 0), "UTC")


def test_recorded_at_sets_the_dose_day(engine, settings, patient) -> None:
    recorded = datetime(2026, 11, 7, 23, 50, tzinfo=timezone(timedelta(hours=8)))
    got = ingest_file(
        engine, open_storage(settings), settings, patient, video(), recorded_at=recorded
    )
    assert got.dose_date == date(2026, 11, 7)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.mp4", b"", "empty"),
        ("notes.mp4", b"hello, this is not a video\n" * 50, "not a usable video"),
    ],
)
def test_unusable_files_are_refused_and_nothing_is_stored(
    engine, settings, patient, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    storage = open_storage(settings)
    with pytest.raises(IngestError, match=message):
        ingest_file(engine, storage, settings, patient, path)
    assert count(engine, schema.submissions) == 0
    assert not list(Path(settings.storage_url.removeprefix("file://")).rglob("raw/*/*"))


def test_limits(engine, settings, patient) -> None:
    storage = open_storage(settings)
    with pytest.raises(IngestError, match="limit is 2 s"):
        ingest_file(
            engine, storage, settings.with_(max_duration_s=2.0), patient, video(3.0, "1280x720")
        )
    with pytest.raises(IngestError, match="larger than allowed"):
        ingest_file(
            engine,
            storage,
            settings.with_(max_pixels=640 * 360),
            patient,
            video(3.0, "1280x720"),
        )
    assert count(engine, schema.submissions) == 0


def test_unknown_patient(engine, settings) -> None:
    with pytest.raises(IngestError, match="no patient with code 'NOPE'"):
        ingest_file(engine, open_storage(settings), settings, "NOPE", video())
