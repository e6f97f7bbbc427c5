import json
from pathlib import Path

import pytest

from vot.config import REPO_ROOT
from vot.triage.bands import (
    AUTO_ACCEPT,
    REJECT,
    REVIEW,
    ThresholdError,
    Thresholds,
    decide,
    load_thresholds,
)

T = Thresholds("t", auto_accept=0.8, reject_below=0.2)


def test_bands() -> None:
    assert decide(0.9, True, [], T).decision == AUTO_ACCEPT
    assert decide(0.5, True, ["no_pill_shown"], T).decision == REVIEW
    assert decide(0.1, True, [], T).decision == REJECT
    assert decide(0.8, True, [], T).decision == AUTO_ACCEPT  # the edge belongs to the band above
    assert decide(0.2, True, [], T).decision == REVIEW


@pytest.mark.parametrize(
    "reason", ["multiple_people", "too_dark", "face_cut_off", "blurry", "face_too_small"]
)
def test_quality_problems_block_auto_accept(reason: str) -> None:
    triage = decide(0.95, True, ["drink", reason], T)
    assert triage.decision == REVIEW
    assert triage.reasons[0] == reason


def test_no_face_never_auto_accepted() -> None:
    triage = decide(0.99, False, [], T)
    assert triage.decision == REVIEW and triage.reasons == ("no_face",)


def test_review_always_says_why() -> None:
    assert decide(0.5, True, [], T).reasons == ("uncertain",)
    assert decide(0.05, True, [], T).reasons == ("low_confidence",)


def test_thresholds_validated(tmp_path: Path) -> None:
    with pytest.raises(ThresholdError):
        Thresholds("bad", auto_accept=0.3, reject_below=0.5)
    (tmp_path / "thresholds").mkdir()
    (tmp_path / "thresholds" / "x.json").write_text("{not json")
    with pytest.raises(ThresholdError, match="malformed"):
        load_thresholds(tmp_path, "x")
    with pytest.raises(ThresholdError, match="no thresholds file"):
        load_thresholds(tmp_path, "missing")


def test_shipped_thresholds_load() -> None:
    path = REPO_ROOT / "models" / "thresholds" / "v1.json"
    shipped = load_thresholds(REPO_ROOT / "models", "v1")
    assert shipped.version == json.loads(path.read_text())["version"] == "v1"
    assert 0 < shipped.reject_below < shipped.auto_accept < 1
