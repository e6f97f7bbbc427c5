"""Real MediaPipe on the real clips of ../shared/data/clips."""

import csv
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLIPS, clip
from vot.config import REPO_ROOT
from vot.media import MediaError, ffmpeg_exe
from workers.scorer import Scorer


@pytest.fixture(scope="module")
def scorer():
    with Scorer() as s:
        yield s


@pytest.fixture(scope="module")
def results(scorer) -> dict[str, tuple[int, object]]:
    if not (CLIPS / "labels.csv").is_file():
        pytest.skip("../shared/data/clips is absent")
    with open(CLIPS / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {
        r["path"]: (int(r["ingestion"]), int(r["face_visible"]), scorer.score(CLIPS / r["path"]))
        for r in rows
    }


def test_every_positive_ranks_above_every_negative(results) -> None:
    positives = [r.confidence for y, _f, r in results.values() if y == 1]
    negatives = [r.confidence for y, _f, r in results.values() if y == 0]
    assert positives and negatives
    assert min(positives) > max(negatives)


def test_hand_to_mouth_found_where_it_happens(results) -> None:
    # Where the fingertips are at the lips, read off the frames (12 fps sampling).
    truth = {"asl_eat.mkv": (0.58, 0.92), "asl_thanks.mkv": (0.33, 0.67)}
    for name, (start, end) in truth.items():
        result = results[name][2]
        assert any(e.type == "hand_to_mouth" for e in result.events), name
        assert start - 0.5 <= result.key_moment_s <= end + 0.5, (name, result.key_moment_s)


def test_no_face_clips_get_the_reason_and_are_not_confident(results) -> None:
    for name, (_y, face_visible, result) in results.items():
        if not face_visible:
            assert "no_face" in result.reasons and not result.face_visible, name
            assert result.confidence < 0.5, name


def test_two_people_are_flagged(results) -> None:
    result = results["webcam_two_faces.mp4"][2]
    assert result.max_faces == 2 and "multiple_people" in result.reasons


def test_result_is_json_ready(results) -> None:
    out = json.loads(json.dumps(results["asl_eat.mkv"][2].to_dict()))
    assert out["quality"]["frames_analysed"] > 10 and out["model_version"]


def test_rotated_copy_scores_like_the_original(scorer, tmp_path: Path) -> None:
    original = clip("asl_eat.mkv")
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-display_rotation",
            "90",
            "-i",
            str(original),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    a, b = scorer.score(original), scorer.score(rotated)
    assert b.quality["rotation"] == 90 and (b.quality["width"], b.quality["height"]) == (480, 640)
    # Same frames, turned: the detectors see the same person upright again.
    assert abs(a.confidence - b.confidence) <= 0.1
    assert abs(a.key_moment_s - b.key_moment_s) <= 0.25


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 100, bytes(range(256)) * 64])
def test_unusable_files_raise_a_clear_error(scorer, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "dose.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError) as info:
        scorer.score(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_manifest_matches_the_installed_models() -> None:
    import mediapipe

    manifest = json.loads((REPO_ROOT / "models" / "manifest.json").read_text())
    site = Path(mediapipe.__file__).parent.parent
    for model in manifest["models"]:
        data = (site / model["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == model["sha256"], model["name"]
