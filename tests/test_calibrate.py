import json
from datetime import date

import pytest

from vot import accounts, schema
from vot.db import utcnow
from vot.triage import calibrate
from vot.triage.bands import Thresholds, load_thresholds

CURRENT = Thresholds("v1", auto_accept=0.9, reject_below=0.1)


def synthetic(n: int = 200) -> list[tuple[float, bool]]:
    # Supervisors accept every video above 0.7, none below 0.3, half in between.
    out = []
    for i in range(n):
        conf = i / n
        out.append((conf, conf > 0.7 or (0.3 <= conf <= 0.7 and i % 2 == 0)))
    return out


def test_bands_follow_the_verdicts() -> None:
    cal = calibrate.choose_bands(synthetic(), CURRENT, "v2", target_precision=0.98, min_reviewed=20)
    assert cal.thresholds.version == "v2"
    assert 0.69 <= cal.thresholds.auto_accept <= 0.72
    assert 0.29 <= cal.thresholds.reject_below <= 0.31
    assert cal.auto_accept_precision >= 0.98 and cal.reject_accepted_share <= 0.02
    assert cal.notes == []


def test_too_few_verdicts_keep_the_current_bands() -> None:
    cal = calibrate.choose_bands(synthetic(10), CURRENT, "v2", min_reviewed=30)
    assert (cal.thresholds.auto_accept, cal.thresholds.reject_below) == (0.9, 0.1)
    assert len(cal.notes) == 2


def test_bad_target_is_refused() -> None:
    with pytest.raises(ValueError):
        calibrate.choose_bands(synthetic(), CURRENT, "v2", target_precision=1.0)


def test_from_the_database_to_a_thresholds_file(engine, tmp_path) -> None:
    now = utcnow()
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "C")
        patient, _ = accounts.add_patient(conn, "P", clinic, date(2026, 1, 1))
        user, _ = accounts.ensure_user(conn, "sup", "password-123", "supervisor", clinic)
        for i, (conf, accepted) in enumerate(synthetic(60)):
            sub = conn.execute(
                schema.submissions.insert().values(
                    patient_id=patient.id,
                    dose_date=date(2026, 1, 1),
                    received_at=now,
                    content_sha256=f"{i:064d}",
                    size_bytes=1,
                    raw_key="raw/x",
                    status="review",
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            conn.execute(
                schema.scores.insert().values(
                    submission_id=sub,
                    model_version="m",
                    threshold_version="v1",
                    confidence=conf,
                    decision="review",
                    face_visible=True,
                    max_faces=1,
                    events=[],
                    quality={},
                    reasons=[],
                    created_at=now,
                )
            )
            # An undone first verdict must not count; the standing one does.
            for verdict, undone in (
                ("reject" if accepted else "accept", now),
                ("accept" if accepted else "reject", None),
            ):
                conn.execute(
                    schema.reviews.insert().values(
                        submission_id=sub,
                        reviewer_id=user,
                        verdict=verdict,
                        previous_status="review",
                        undone_at=undone,
                        created_at=now,
                    )
                )
        verdicts = calibrate.final_verdicts(conn)
    assert sorted(verdicts) == sorted(synthetic(60))
    cal = calibrate.choose_bands(verdicts, CURRENT, "clinic-a-1", min_reviewed=10)
    path = calibrate.write(cal, tmp_path, from_version="v1")
    loaded = load_thresholds(tmp_path, "clinic-a-1")
    assert loaded == cal.thresholds
    assert "60 supervisor verdicts" in json.loads(path.read_text())["notes"]
    with pytest.raises(FileExistsError):
        calibrate.write(cal, tmp_path)
