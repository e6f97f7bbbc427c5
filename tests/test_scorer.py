"""Real MediaPipe on the real clips of ../shared/data/clips (skipped when they are absent).

Hand to mouth stands in for taking a pill: no real clip of a pill being swallowed exists here.
Every clip is scored once per module; the whole file takes well under two minutes on 2 cores.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLIPS, no_shared_data, video
from vot.config import REPO_ROOT
from vot.media import MediaError, ffmpeg_exe
from workers.scoring import evidence, fit
from workers.scoring.frames import FrameSamplerOptions, sample_frames
from workers.scoring.scorer import MODEL_VERSION, Scorer, ScoreResult

# When the fingertips are at the lips, read off the frames by eye (ffmpeg to PNG, 15 fps).
TRUTH = {"asl_eat.mkv": (0.53, 1.0), "asl_thanks.mkv": (0.4, 0.67)}
KEYS = {"confidence", "face_visible", "max_faces", "events", "quality", "reasons"}
KEYS |= {"model_version", "key_moment_s", "timings", "cues", "fingerprint"}


def _labels() -> dict[str, dict[str, str]]:
    path = CLIPS / "labels.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


LABELS = _labels()


def _clips(column: str, value: str) -> list[str]:
    """The labelled clips with ``column == value``."""
    return [name for name, row in LABELS.items() if row[column] == value]


@pytest.fixture(scope="module")
def clips() -> Path:
    if not (CLIPS / "labels.csv").is_file():
        no_shared_data("real clips")
    return CLIPS


@pytest.fixture(scope="module")
def scorer():
    with Scorer() as s:
        yield s


@pytest.fixture(scope="module")
def labels(clips: Path) -> dict[str, dict[str, str]]:
    return LABELS


@pytest.fixture(scope="module")
def results(
    clips: Path, scorer: Scorer, labels: dict[str, dict[str, str]]
) -> dict[str, ScoreResult]:
    return {name: scorer.score(CLIPS / name) for name in labels}


def _negatives(results, labels) -> dict[str, float]:
    return {n: r.confidence for n, r in results.items() if labels[n]["ingestion"] == "0"}


@pytest.mark.parametrize("name", _clips("ingestion", "1"))
def test_every_positive_ranks_above_every_negative(name, results, labels) -> None:
    negatives = _negatives(results, labels)
    assert negatives and results[name].confidence > max(negatives.values()), (name, negatives)
    # A clear touch reaches the auto-accept level of thresholds v1.
    thresholds = json.loads((REPO_ROOT / "models" / "thresholds" / "v1.json").read_text())
    assert results[name].confidence >= thresholds["auto_accept"]


def test_leave_one_clip_out_ranks_and_the_shipped_weights_are_the_fit(results, labels) -> None:
    names = list(labels)
    cues = [results[n].cues for n in names]
    truth = [int(labels[n]["ingestion"]) for n in names]
    # Each clip scored by weights fitted without it (issue 16's target: at least 0.95).
    assert fit.auc(fit.leave_one_out(cues, truth), truth) >= 0.95
    # The shipped weights are what the fit gives on these clips, not set by hand after it.
    fitted = fit.fit_weights(cues, truth).as_vector()
    assert fitted == pytest.approx(evidence.FITTED_WEIGHTS.as_vector(), abs=0.1)


def test_no_negative_reaches_auto_accept(results, labels) -> None:
    thresholds = json.loads((REPO_ROOT / "models" / "thresholds" / "v1.json").read_text())
    negatives = _negatives(results, labels)
    assert max(negatives.values()) < thresholds["auto_accept"], negatives


def test_hand_to_mouth_is_found_where_it_happens(results) -> None:
    for name, (start, end) in TRUTH.items():
        result = results[name]
        touches = [e for e in result.events if e.type == "hand_to_mouth"]
        assert any(e.start_s <= end and e.end_s >= start for e in touches), (name, touches)
        assert result.key_moment_s is not None
        assert start - 0.5 <= result.key_moment_s <= end + 0.5, (name, result.key_moment_s)
        assert "no_hand_to_mouth" not in result.reasons


@pytest.mark.parametrize("name", _clips("face_visible", "0"))
def test_clips_without_a_face_say_so_and_are_not_confident(name, results) -> None:
    result = results[name]
    assert not result.face_visible and "no_face" in result.reasons, name
    assert result.confidence < 0.1 and result.key_moment_s is None, name


@pytest.mark.parametrize("name", _clips("face_visible", "1"))
def test_clips_with_a_face_find_it(name, results) -> None:
    assert results[name].face_visible and "no_face" not in results[name].reasons, name


def test_two_people_are_flagged_and_one_is_not(results) -> None:
    two = results["webcam_two_faces.mp4"]
    assert two.max_faces == 2 and "multiple_people" in two.reasons
    for name in ("asl_eat.mkv", "webcam_woman_head_turns.mp4", "thumbsup_face.mp4"):
        assert results[name].max_faces == 1 and "multiple_people" not in results[name].reasons


def test_result_dict_is_the_json_contract(results) -> None:
    out = json.loads(json.dumps(results["asl_eat.mkv"].to_dict()))
    assert set(out) == KEYS and out["model_version"] == MODEL_VERSION
    assert 0.0 <= out["confidence"] <= 1.0 and isinstance(out["face_visible"], bool)
    quality = out["quality"]
    for key in ("duration_s", "too_dark", "blurry", "too_short", "face_cut_off"):
        assert key in quality
    assert quality["frames_analysed"] == 16 and quality["sample_fps"] == 10.0
    assert (quality["width"], quality["height"], quality["rotation"]) == (640, 480, 0)
    assert set(out["timings"]) == {"decode_s", "detect_s", "total_s"}
    event = next(e for e in out["events"] if e["type"] == "hand_to_mouth")
    assert set(event) == {"type", "start_s", "end_s", "score"}


def test_a_rotated_copy_scores_like_the_original(scorer, results, tmp_path: Path) -> None:
    # Same stored frames with a 90-degree display tag: ffmpeg turns them, the person lies on
    # their side, and the scorer must turn the picture back to find the face.
    rotated = tmp_path / "rotated.mp4"
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-display_rotation", "90"]
    subprocess.run([*cmd, "-i", str(CLIPS / "asl_eat.mkv"), "-c", "copy", str(rotated)], check=True)
    original, turned = results["asl_eat.mkv"], scorer.score(rotated)
    assert turned.quality["rotation"] == 90
    assert (turned.quality["width"], turned.quality["height"]) == (480, 640)
    assert turned.quality["turned_deg"] in (90, 270)
    # Tolerance: confidence within 0.05, key moment within two sampled frames (0.2 s).
    assert abs(turned.confidence - original.confidence) <= 0.05
    assert abs(turned.key_moment_s - original.key_moment_s) <= 0.2


def _truncated(tmp_path: Path) -> Path:
    """The first 5 % of a video: the header survives, the pictures do not."""
    data = video(8.0, "1280x720", audio=True).read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 20])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(os.urandom(64 * 1024)), "not a video"),
        (lambda p: p.write_text("my dose video\n" * 200), "not a video"),
    ],
    ids=["empty", "random-bytes", "text-renamed-mp4"],
)
def test_unusable_files_raise_a_clear_error(scorer, tmp_path: Path, make, message) -> None:
    path = tmp_path / "dose.mp4"
    make(path)
    with pytest.raises(MediaError) as info:
        scorer.score(path)
    text = str(info.value)
    assert message in text and "\n" not in text and len(text) < 200


def test_truncated_and_sound_only_files_raise_a_clear_error(scorer, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="damaged|no picture"):
        scorer.score(_truncated(tmp_path))
    audio = tmp_path / "audio.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=2", str(audio)],
        check=True,
    )
    with pytest.raises(MediaError, match="sound but no picture"):
        scorer.score(audio)


def _encode(src: Path, out: Path, *args: str) -> Path:
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-t", "1", *args, str(out)]
    subprocess.run(cmd, check=True)
    return out


def test_sampling_decodes_phone_formats_upright_in_one_pass(tmp_path: Path) -> None:
    src = video()
    vp9 = _encode(src, tmp_path / "a.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime")
    # A phone-style portrait file: sideways HEVC frames with a tag that turns them upright.
    sideways = _encode(src, tmp_path / "s.mp4", "-vf", "transpose=2", "-c:v", "libx265")
    portrait = tmp_path / "portrait.mp4"
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-display_rotation", "270"]
    subprocess.run([*cmd, "-i", str(sideways), "-c", "copy", str(portrait)], check=True)
    opts = FrameSamplerOptions(fps=10, max_side=320)
    webm = list(sample_frames(vp9, opts))
    upright = list(sample_frames(portrait, opts))
    assert [f.t_s for f in webm] == pytest.approx([i / 10 for i in range(10)])
    assert webm[0].rgb.shape == (240, 320, 3) and upright[0].rgb.shape == (240, 320, 3)
    # The tag is applied: the portrait file decodes to the original landscape picture.
    original = next(iter(sample_frames(src, opts))).rgb.astype(int)
    assert abs(upright[0].rgb.astype(int) - original).mean() < 12


def test_sampling_kills_ffmpeg_at_the_time_limit() -> None:
    frames = sample_frames(video(8.0), FrameSamplerOptions(timeout_s=0.2))
    with pytest.raises(MediaError, match="longer than 0.2 s"):
        for _ in frames:
            time.sleep(0.05)  # a slow consumer: ffmpeg waits on the pipe until killed


def test_manifest_matches_the_installed_models() -> None:
    import mediapipe

    manifest = json.loads((REPO_ROOT / "models" / "manifest.json").read_text())
    assert manifest["scorer_model_version"] == MODEL_VERSION
    site = Path(mediapipe.__file__).parent.parent
    for model in manifest["models"]:
        assert model["version"] == mediapipe.__version__ == "0.10.21"
        data = (site / model["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == model["sha256"], model["name"]


def test_decoder_threads_do_not_change_the_frames() -> None:
    src = video()
    one = list(sample_frames(src, FrameSamplerOptions(fps=10, max_side=320, threads=1)))
    auto = list(sample_frames(src, FrameSamplerOptions(fps=10, max_side=320, threads=0)))
    assert len(one) == len(auto) > 10
    assert all((a.rgb == b.rgb).all() for a, b in zip(one, auto, strict=True))


@pytest.mark.parametrize(
    ("name", "low", "high"), [("asl_eat.mkv", 0.4, 0.7), ("webcam_two_faces.mp4", 0.9, 1.0)]
)
def test_face_detector_skips_every_other_frame_only_with_one_face(
    clips: Path, name, low, high
) -> None:
    from workers.scoring.detect import Detector

    with Detector() as detector:
        calls = 0
        detect = detector._faces.process

        def counted(rgb):
            nonlocal calls
            calls += 1
            return detect(rgb)

        detector._faces.process = counted
        looked = 0
        for frame in sample_frames(CLIPS / name, FrameSamplerOptions(fps=10, max_side=960)):
            seen = detector.observe(frame)
            looked += bool(seen.faces)
        assert looked > 10
        assert low * looked <= calls <= high * looked + 1
